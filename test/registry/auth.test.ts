import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  dockerCredentialSource,
  login,
  logout,
  parseReference,
  pull,
  push,
  resolveCredentials,
  staticCredentialSource,
} from '../../src/registry/index.js';
import { FaultProxy } from './helpers/fault-proxy.js';
import { makeRandomImage, tempStore, uniqueRepo } from './helpers/images.js';
import { rejection } from './helpers/rejection.js';

const reg = inject('registry');
const good = () => staticCredentialSource({ [reg.basic]: { username: reg.user, password: reg.password }, [reg.token]: { username: reg.user, password: reg.password } });

/** Pulls `ref` with good credentials into a store of its own; the manifest digest it got. */
async function pulledDigest(ref: string): Promise<string> {
  const d = await tempStore();
  try {
    return (await pull(d.store, ref, { credentials: good() })).manifestDigest;
  } finally {
    await d.dispose();
  }
}

async function tokenStats(): Promise<{ get: number; post: number }> {
  const r = await request(`${reg.tokenServer}/stats`);
  return (await r.body.json()) as { get: number; post: number };
}

describe('authentication', () => {
  let s: Awaited<ReturnType<typeof tempStore>>;
  let tmp: string;
  beforeAll(async () => {
    s = await tempStore();
    tmp = await mkdtemp(join(tmpdir(), 'kiln-auth-'));
  });
  afterAll(async () => {
    await s.dispose();
    await rm(tmp, { recursive: true, force: true });
  });

  it('Basic: push and pull with credentials', async () => {
    const ref = `${reg.basic}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, parseReference(ref).toString(), [3000]);
    await push(s.store, ref, undefined, { credentials: good() });
    expect(await pulledDigest(ref)).toBe(img.descriptor.digest);
  });

  it('Basic: no credentials and bad credentials give clear REGISTRY_AUTH errors without secrets', async () => {
    const ref = `${reg.basic}/${uniqueRepo()}:1`;
    await makeRandomImage(s.store, parseReference(ref).toString(), [100]);
    const none = await rejection(push(s.store, ref, undefined, { credentials: staticCredentialSource({}) }));
    expect(none.code).toBe('REGISTRY_AUTH');
    expect(none.message).toMatch(/authentication required/);
    const bad = await rejection(push(s.store, ref, undefined, { credentials: staticCredentialSource({ [reg.basic]: { username: 'kiln', password: 'wrong-pass-XYZ' } }) }));
    expect(bad.code).toBe('REGISTRY_AUTH');
    expect(bad.message).toMatch(/refused the credentials/);
    expect(bad.message).not.toContain('wrong-pass-XYZ');
  });

  it('Bearer: push and pull through the token server, tokens cached per scope', async () => {
    const ref = `${reg.token}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, parseReference(ref).toString(), [3000, 4000, 5000]);
    const before = await tokenStats();
    await push(s.store, ref, undefined, { credentials: good() });
    const afterPush = await tokenStats();
    // one token per scope set, not per request (4 blobs + manifest share the push scope)
    expect(afterPush.get - before.get).toBeLessThanOrEqual(2);
    expect(await pulledDigest(ref)).toBe(img.descriptor.digest);
  });

  it('Bearer: anonymous token for public repositories; refusal elsewhere; bad password refused', async () => {
    const pub = `${reg.token}/public/${uniqueRepo('x').replace('/', '-')}:1`;
    const img = await makeRandomImage(s.store, parseReference(pub).toString(), [500]);
    await push(s.store, pub, undefined, { credentials: good() });
    const d = await tempStore();
    try {
      const r = await pull(d.store, pub, { credentials: staticCredentialSource({}) });
      expect(r.manifestDigest).toBe(img.descriptor.digest);
      const priv = `${reg.token}/${uniqueRepo()}:1`;
      await makeRandomImage(s.store, parseReference(priv).toString(), [500]);
      await push(s.store, priv, undefined, { credentials: good() });
      const anon = await rejection(pull(d.store, priv, { credentials: staticCredentialSource({}) }));
      expect(anon.code).toBe('REGISTRY_AUTH');
      const bad = await rejection(pull(d.store, priv, { credentials: staticCredentialSource({ [reg.token]: { username: 'kiln', password: 'nope-SECRET-1' } }) }));
      expect(bad.code).toBe('REGISTRY_AUTH');
      expect(bad.message).toMatch(/refused the credentials/);
      expect(bad.message).not.toContain('nope-SECRET-1');
    } finally {
      await d.dispose();
    }
  });

  it('Bearer: OAuth2 POST with a refresh (identity) token', async () => {
    const form = new URLSearchParams({ grant_type: 'password', username: reg.user, password: reg.password, service: reg.tokenService, client_id: 't' });
    const r = await request(`${reg.tokenServer}/token`, { method: 'POST', body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    const { refresh_token } = (await r.body.json()) as { refresh_token: string };
    expect(refresh_token).toBeTruthy();
    const before = await tokenStats();
    const ref = `${reg.token}/${uniqueRepo()}:1`;
    await makeRandomImage(s.store, parseReference(ref).toString(), [700]);
    await push(s.store, ref, undefined, { credentials: staticCredentialSource({ [reg.token]: { identityToken: refresh_token } }) });
    const after = await tokenStats();
    expect(after.post).toBeGreaterThan(before.post);
    expect(after.get).toBe(before.get);
  });

  it('credentials from config.json auths, REGISTRY_AUTH_FILE, and Docker Hub key mapping', async () => {
    const dir = join(tmp, 'cfg1');
    await writeFile(join(tmp, 'placeholder'), '');
    await import('node:fs/promises').then((f) => f.mkdir(dir, { recursive: true }));
    await writeFile(join(dir, 'config.json'), JSON.stringify({
      auths: {
        [`http://${reg.basic}`]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString('base64') },
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hubpass').toString('base64') },
      },
    }));
    const env = { ...process.env, DOCKER_CONFIG: dir, REGISTRY_AUTH_FILE: '' };
    expect(await resolveCredentials('docker.io', { env })).toEqual({ username: 'hubuser', password: 'hubpass' });
    expect(await resolveCredentials(reg.basic, { env })).toEqual({ username: reg.user, password: reg.password });
    const ref = `${reg.basic}/${uniqueRepo()}:1`;
    await makeRandomImage(s.store, parseReference(ref).toString(), [100]);
    await push(s.store, ref, undefined, { credentials: dockerCredentialSource({ env }) });

    const podman = join(tmp, 'auth.json');
    await writeFile(podman, JSON.stringify({ auths: { [reg.token]: { auth: Buffer.from(`${reg.user}:${reg.password}`).toString('base64') } } }));
    expect(await resolveCredentials(reg.token, { env: { ...env, REGISTRY_AUTH_FILE: podman } })).toEqual({ username: reg.user, password: reg.password });
    const idt = join(tmp, 'cfg2');
    await import('node:fs/promises').then((f) => f.mkdir(idt, { recursive: true }));
    await writeFile(join(idt, 'config.json'), JSON.stringify({ auths: { 'ghcr.io': { identitytoken: 'tok' } } }));
    expect(await resolveCredentials('ghcr.io', { env: { ...env, DOCKER_CONFIG: idt } })).toEqual({ identityToken: 'tok' });

    // a credsStore whose program is missing means "no credentials"; a missing credHelpers program is an error
    const missing = join(tmp, 'cfg3');
    await import('node:fs/promises').then((f) => f.mkdir(missing, { recursive: true }));
    await writeFile(join(missing, 'config.json'), JSON.stringify({ credsStore: 'kiln-absent', credHelpers: { 'quay.io': 'kiln-absent' } }));
    expect(await resolveCredentials(reg.anon, { env: { ...env, DOCKER_CONFIG: missing } })).toBeUndefined();
    await expect(resolveCredentials('quay.io', { env: { ...env, DOCKER_CONFIG: missing } })).rejects.toThrow(/docker-credential-kiln-absent not found on PATH/);
  });

  it('credHelpers: docker-credential-test on PATH supplies, stores and erases credentials', async () => {
    const bin = join(tmp, 'bin');
    const data = join(tmp, 'helper-data');
    await import('node:fs/promises').then(async (f) => { await f.mkdir(bin, { recursive: true }); await f.mkdir(data, { recursive: true }); });
    const script = join(bin, 'docker-credential-test');
    await writeFile(script, `#!/bin/sh
# a file-backed credential helper speaking the docker-credential protocol
DIR='${data}'
op="$1"
input=$(cat)
case "$op" in
  get)
    key=$(printf '%s' "$input" | sed 's#[^A-Za-z0-9]#_#g')
    if [ -f "$DIR/$key" ]; then cat "$DIR/$key"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  store)
    url=$(printf '%s' "$input" | sed 's/.*"ServerURL":"\\([^"]*\\)".*/\\1/')
    key=$(printf '%s' "$url" | sed 's#[^A-Za-z0-9]#_#g')
    printf '%s' "$input" > "$DIR/$key" ;;
  erase)
    key=$(printf '%s' "$input" | sed 's#[^A-Za-z0-9]#_#g')
    rm -f "$DIR/$key" ;;
esac
`);
    await chmod(script, 0o755);
    const cfgDir = join(tmp, 'cfg-helper');
    await import('node:fs/promises').then((f) => f.mkdir(cfgDir, { recursive: true }));
    await writeFile(join(cfgDir, 'config.json'), JSON.stringify({ credHelpers: { [reg.token]: 'test' } }));
    const env = { ...process.env, DOCKER_CONFIG: cfgDir, REGISTRY_AUTH_FILE: '', PATH: `${bin}:${process.env.PATH}` };

    expect(await resolveCredentials(reg.token, { env })).toBeUndefined();
    // a wrong password is refused before anything is stored
    await expect(login(reg.token, { username: reg.user, password: 'bad' }, { env })).rejects.toMatchObject({ code: 'REGISTRY_AUTH' });
    expect(await resolveCredentials(reg.token, { env })).toBeUndefined();
    const saved = await login(reg.token, { username: reg.user, password: reg.password }, { env });
    expect(saved).toEqual({ kind: 'helper', program: 'docker-credential-test' });
    expect(await resolveCredentials(reg.token, { env })).toEqual({ username: reg.user, password: reg.password });

    const ref = `${reg.token}/${uniqueRepo()}:1`;
    await makeRandomImage(s.store, parseReference(ref).toString(), [100]);
    await push(s.store, ref, undefined, { credentials: dockerCredentialSource({ env }) });

    expect(await logout(reg.token, { env })).toBe(true);
    expect(await resolveCredentials(reg.token, { env })).toBeUndefined();
    // config.json itself never held the secret
    expect(await readFile(join(cfgDir, 'config.json'), 'utf8')).not.toContain(reg.password);
  });

  it('login verifies then writes config.json with mode 0600; logout removes the entry', async () => {
    const cfgDir = join(tmp, 'cfg-login');
    const env = { ...process.env, DOCKER_CONFIG: cfgDir, REGISTRY_AUTH_FILE: '' };
    await expect(login(reg.basic, { username: reg.user, password: 'bad' }, { env })).rejects.toMatchObject({ code: 'REGISTRY_AUTH' });
    await expect(stat(join(cfgDir, 'config.json'))).rejects.toThrow();
    const saved = await login(reg.basic, { username: reg.user, password: reg.password }, { env });
    expect(saved).toEqual({ kind: 'file', path: join(cfgDir, 'config.json') });
    expect((await stat(join(cfgDir, 'config.json'))).mode & 0o777).toBe(0o600);
    const cfg = JSON.parse(await readFile(join(cfgDir, 'config.json'), 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(cfg.auths[reg.basic]!.auth, 'base64').toString()).toBe(`${reg.user}:${reg.password}`);
    expect(await logout(reg.basic, { env })).toBe(true);
    expect(await logout(reg.basic, { env })).toBe(false);
    expect(await resolveCredentials(reg.basic, { env })).toBeUndefined();
  });

  it('a redirect to another host does not carry the Authorization header', async () => {
    // the same image in the anonymous registry plays the blob CDN
    const repo = uniqueRepo();
    const img = await makeRandomImage(s.store, `${reg.basic}/${repo}:1`, [2000]);
    await push(s.store, `${reg.basic}/${repo}:1`, undefined, { credentials: good() });
    await push(s.store, `${reg.basic}/${repo}:1`, `${reg.anon}/${repo}:1`);
    const cdn = await FaultProxy.start(reg.anon);
    const front = await FaultProxy.start(reg.basic);
    try {
      front.on('GET', /\/blobs\/sha256:/, (ctx) => {
        ctx.res.writeHead(307, { location: `http://${cdn.addr}${ctx.req.url}` });
        ctx.res.end();
      }, 10);
      const d = await tempStore();
      try {
        await pull(d.store, `${front.addr}/${repo}:1`, { credentials: staticCredentialSource({ [front.addr]: { username: reg.user, password: reg.password } }) });
        expect(await d.store.hasBlob(img.manifest.layers[0]!.digest)).toBe(true);
      } finally {
        await d.dispose();
      }
      expect(front.seen.some((r) => r.headers.authorization)).toBe(true);
      expect(cdn.seen.length).toBeGreaterThan(0);
      expect(cdn.seen.every((r) => r.headers.authorization === undefined)).toBe(true);
    } finally {
      await cdn.close();
      await front.close();
    }
  });
});
