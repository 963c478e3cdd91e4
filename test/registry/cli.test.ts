import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseReference } from '../../src/registry/index.js';
import { runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { makeRandomImage, tempStore, uniqueRepo } from './helpers/images.js';

const reg = inject('registry');
const REPO = resolve(import.meta.dirname, '..', '..');
const COMMANDS = ['pull', 'push', 'copy', 'login', 'logout'];

/**
 * The five registry commands compiled on their own (the rest of the tree may
 * be mid-edit by others) and driven through commander in a child process,
 * with the same global options as src/cli/main.ts.
 */
async function compileCli(dir: string): Promise<string> {
  const out = join(dir, 'out');
  try {
    await promisify(execFile)(join(REPO, 'node_modules', '.bin', 'tsc'), [
      '--ignoreConfig', '--outDir', out, '--rootDir', join(REPO, 'src'), '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
      '--target', 'ES2022', '--skipLibCheck', '--types', 'node', '--declaration', 'false',
      ...COMMANDS.map((c) => join(REPO, 'src', 'cli', 'commands', `${c}.ts`)),
    ], { cwd: REPO });
  } catch (e) {
    // type errors elsewhere still emit JavaScript; only a missing output is fatal
    if (!COMMANDS.every((c) => existsSync(join(out, 'cli', 'commands', `${c}.js`)))) throw e;
  }
  await writeFile(join(dir, 'package.json'), '{"type":"module"}\n');
  await symlink(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  const driver = join(dir, 'kiln.mjs');
  await writeFile(driver, `
import { Command } from 'commander';
${COMMANDS.map((c) => `import { register as ${c} } from './out/cli/commands/${c}.js';`).join('\n')}
const collect = (v, p) => [...p, v];
const program = new Command().name('kiln')
  .option('--root <dir>').option('--debug')
  .option('--insecure-registry <h>', '', collect, []).option('--registry-mirror <u>', '', collect, [])
  .exitOverride();
for (const r of [${COMMANDS.join(', ')}]) r(program);
try {
  await program.parseAsync(process.argv.slice(2), { from: 'user' });
} catch (e) {
  if (e.exitCode === 0) process.exit(0);
  process.stderr.write('kiln: ' + (typeof e.format === 'function' ? e.format() : e.message) + '\\n');
  process.exit(e.code === 'USAGE' || e.exitCode !== undefined ? 2 : 1);
}
`);
  return driver;
}

describe('CLI: pull, push, copy, login, logout', () => {
  let tmp: string;
  let driver: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'kiln-cli-'));
    driver = await compileCli(tmp);
    env = { DOCKER_CONFIG: join(tmp, 'docker'), REGISTRY_AUTH_FILE: '' };
  });
  afterAll(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  function kiln(args: string[], input = ''): Promise<KilnRun> {
    return runKiln(args, { entry: driver, env, input });
  }

  it('login refuses bad credentials without printing them, even with --debug; accepts good ones; logout', async () => {
    const bad = await kiln(['--debug', 'login', reg.basic, '-u', reg.user, '--password-stdin'], 'Wr0ng-Secret-42\n');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/kiln: .*refused the credentials/);
    expect(bad.stderr).toContain('debug: GET');
    expect(bad.stderr).not.toContain('Wr0ng-Secret-42');
    expect(bad.stderr).not.toContain(Buffer.from(`${reg.user}:Wr0ng-Secret-42`).toString('base64'));
    expect(existsSync(join(tmp, 'docker', 'config.json'))).toBe(false);

    const good = await kiln(['--debug', 'login', reg.token, '-u', reg.user, '--password-stdin'], `${reg.password}\n`);
    expect(good.code).toBe(0);
    expect(good.stderr).toMatch(/login succeeded/);
    expect(good.stderr).not.toContain(reg.password);
    expect(good.stderr).not.toMatch(/Bearer|eyJ/);
    const cfg = JSON.parse(await readFile(join(tmp, 'docker', 'config.json'), 'utf8')) as { auths: Record<string, unknown> };
    expect(Object.keys(cfg.auths)).toContain(reg.token);

    const usage = await kiln(['login', reg.basic, '--password-stdin'], 'x\n');
    expect(usage.code).toBe(2);
  });

  it('push, pull and copy print the digest; credentials come from config.json', async () => {
    const s = await tempStore();
    const d = await tempStore();
    try {
      const login = await kiln(['login', reg.token, '-u', reg.user, '--password-stdin'], reg.password);
      expect(login.code).toBe(0);
      const ref = `${reg.token}/${uniqueRepo('cli')}:1`;
      const img = await makeRandomImage(s.store, parseReference(ref).toString(), [200_000]);
      // the store lock is shared: the child may open the same root
      const pushed = await kiln(['--root', s.root, 'push', ref, '--chunk-size', '64K', '-t', 'also']);
      expect(pushed.stderr).toMatch(/pushed/);
      expect(pushed.code).toBe(0);
      expect(pushed.stdout.trim()).toBe(img.descriptor.digest);

      // random bytes are no layer: transport only, nothing to unpack
      const pulled = await kiln(['--root', d.root, 'pull', ref.replace(':1', ':also'), '--platform', 'linux/amd64', '--no-unpack']);
      expect(pulled.code).toBe(0);
      expect(pulled.stdout.trim()).toBe(img.descriptor.digest);
      expect(await d.store.resolve(parseReference(ref.replace(':1', ':also')).toString())).toMatchObject({ digest: img.descriptor.digest });

      const dest = `${reg.anon}/${uniqueRepo('cli')}:copied`;
      const copied = await kiln(['copy', ref, dest]);
      expect(copied.code).toBe(0);
      expect(copied.stdout.trim()).toBe(img.descriptor.digest);

      const missing = await kiln(['--root', d.root, 'pull', `${reg.anon}/${uniqueRepo('cli')}:none`]);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/kiln: manifest .*MANIFEST_UNKNOWN/);
      const invalid = await kiln(['--root', d.root, 'pull', 'Upper/Case']);
      expect(invalid.stderr).toMatch(/must be lowercase/);

      const out = await kiln(['logout', reg.token]);
      expect(out.code).toBe(0);
      expect(out.stderr).toMatch(/removed credentials/);
    } finally {
      await s.dispose();
      await d.dispose();
    }
  });
});
