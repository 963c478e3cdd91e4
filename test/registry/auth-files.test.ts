import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { push, parseReference, dockerCredentialSource, resolveCredentials } from '../../src/registry/index.js';
import { authFilePaths } from '../../src/registry/docker-config.js';
import { tempStore, uniqueRepo } from './helpers/images.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { runKiln } from '../helpers/kiln-cli.js';

const reg = inject('registry');

/**
 * containers-auth.json(5): `podman login` / `buildah login` / `skopeo login`
 * write ${XDG_RUNTIME_DIR}/containers/auth.json; readers also look in
 * ${XDG_CONFIG_HOME:-~/.config}/containers/auth.json, then Docker's config.json.
 * skopeo (containers/image, the same code as podman and buildah) does the login here.
 */
describe('credentials written by podman/buildah/skopeo login', () => {
  let tmp: string;
  let s: Awaited<ReturnType<typeof tempStore>>;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'kiln-authfiles-'));
    s = await tempStore();
  });
  afterAll(async () => {
    await s.dispose();
    await rm(tmp, { recursive: true, force: true });
  });

  /** A user with nothing configured: own HOME, runtime dir and Docker config dir, no REGISTRY_AUTH_FILE. */
  async function user(name: string): Promise<NodeJS.ProcessEnv> {
    const home = join(tmp, name, 'home');
    const run = join(tmp, name, 'run');
    await mkdir(home, { recursive: true });
    await mkdir(run, { recursive: true, mode: 0o700 });
    return { HOME: home, XDG_RUNTIME_DIR: run, XDG_CONFIG_HOME: '', DOCKER_CONFIG: '', REGISTRY_AUTH_FILE: '' };
  }
  const skopeoLogin = (env: NodeJS.ProcessEnv, extra: string[] = [], password = reg.password): void => {
    execFileSync('skopeo', ['login', '--tls-verify=false', '-u', reg.user, '--password-stdin', ...extra, reg.basic], {
      env: { ...process.env, ...env }, input: `${password}\n`, stdio: ['pipe', 'ignore', 'pipe'],
    });
  };

  it('the search order is REGISTRY_AUTH_FILE alone, else runtime auth.json, ~/.config auth.json, Docker config.json, ~/.dockercfg', () => {
    expect(authFilePaths({ HOME: '/h', XDG_RUNTIME_DIR: '/r' }).map((f) => f.path))
      .toEqual(['/r/containers/auth.json', '/h/.config/containers/auth.json', '/h/.docker/config.json', '/h/.dockercfg']);
    expect(authFilePaths({ HOME: '/h', XDG_CONFIG_HOME: '/c', DOCKER_CONFIG: '/d' }, 1000).map((f) => f.path))
      .toEqual(['/run/containers/1000/auth.json', '/c/containers/auth.json', '/d/config.json', '/h/.dockercfg']);
    expect(authFilePaths({ HOME: '/h', REGISTRY_AUTH_FILE: '/x.json' }).map((f) => f.path)).toEqual(['/x.json']);
  });

  it('after a login into ${XDG_RUNTIME_DIR}/containers/auth.json, kiln push and kiln pull reach the htpasswd registry', async () => {
    const env = await user('runtime');
    skopeoLogin(env);
    const written = JSON.parse(await readFile(join(env.XDG_RUNTIME_DIR!, 'containers', 'auth.json'), 'utf8')) as { auths: Record<string, unknown> };
    expect(Object.keys(written.auths)).toContain(reg.basic);
    expect(await resolveCredentials(reg.basic, { env })).toEqual({ username: reg.user, password: reg.password });

    const ref = `${reg.basic}/${uniqueRepo()}:1`;
    await makeBusyboxImage(s.store, parseReference(ref).toString());
    await push(s.store, ref, undefined, { credentials: dockerCredentialSource({ env }) });
    const root = join(tmp, 'runtime', 'store');
    const pulled = await runKiln(['--root', root, 'pull', ref], { env });
    expect(pulled.stderr).not.toMatch(/unauthorized|401/i);
    expect(pulled.stderr).not.toMatch(/^kiln: /m);
    expect(pulled.code).toBe(0);
    // and without the login, the same pull is refused
    const anon = await runKiln(['--root', join(tmp, 'anon-store'), 'pull', ref], { env: await user('nobody') });
    expect(anon.code).not.toBe(0);
  });

  it('a login into ~/.config/containers/auth.json is found; the runtime file wins over it and over config.json', async () => {
    const env = await user('config');
    skopeoLogin(env, ['--authfile', join(env.HOME!, '.config', 'containers', 'auth.json')]);
    expect(await resolveCredentials(reg.basic, { env })).toEqual({ username: reg.user, password: reg.password });
    const ref = `${reg.basic}/${uniqueRepo()}:1`;
    await makeBusyboxImage(s.store, parseReference(ref).toString());
    await push(s.store, ref, undefined, { credentials: dockerCredentialSource({ env }) });
    const pulled = await runKiln(['--root', join(tmp, 'config', 'store'), 'pull', ref], { env });
    expect(pulled.stderr).not.toMatch(/^kiln: /m);
    expect(pulled.code).toBe(0);

    // Docker's config.json has other credentials for the same registry: the auth.json files come first
    await mkdir(join(env.HOME!, '.docker'), { recursive: true });
    await writeFile(join(env.HOME!, '.docker', 'config.json'), JSON.stringify({ auths: { [reg.basic]: { auth: Buffer.from('docker:other').toString('base64') } } }));
    expect(await resolveCredentials(reg.basic, { env })).toEqual({ username: reg.user, password: reg.password });
    await mkdir(join(env.XDG_RUNTIME_DIR!, 'containers'), { recursive: true });
    await writeFile(join(env.XDG_RUNTIME_DIR!, 'containers', 'auth.json'), JSON.stringify({ auths: { [reg.basic]: { auth: Buffer.from('runtime:first').toString('base64') } } }));
    expect(await resolveCredentials(reg.basic, { env })).toEqual({ username: 'runtime', password: 'first' });
    // a registry only config.json knows is still found there
    await writeFile(join(env.HOME!, '.docker', 'config.json'), JSON.stringify({ auths: { 'other.example': { auth: Buffer.from('d:p').toString('base64') } } }));
    expect(await resolveCredentials('other.example', { env })).toEqual({ username: 'd', password: 'p' });
    // REGISTRY_AUTH_FILE replaces the whole search, as in containers/image
    const only = join(tmp, 'only.json');
    await writeFile(only, JSON.stringify({ auths: {} }));
    expect(await resolveCredentials(reg.basic, { env: { ...env, REGISTRY_AUTH_FILE: only } })).toBeUndefined();
  });
});
