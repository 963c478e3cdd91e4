import { execFile } from 'node:child_process';
import { cp, mkdir, symlink } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { rebuildIfStale } from '../helpers/kiln-cli.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';
import { RegistryClient } from '../../src/registry/index.js';
import { parseReference } from '../../src/registry/index.js';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '..', '..');
let b: Bench;

beforeAll(async () => {
  await rebuildIfStale(['index', 'sys/libc', 'builder/build', 'builder/options']);
  b = await bench();
  await b.release();
}, 180_000);
afterAll(async () => {
  await b.cleanup();
});

/** Which koffi files a fresh Node process has loaded after running `code` (an ES module body). */
async function koffiLoadedAfter(code: string): Promise<string[]> {
  // the addon's file mapped into the process, however it was loaded (koffi's entry module or process.dlopen)
  const script = `${code}\nconst { readFileSync } = await import('node:fs');\nconsole.log(JSON.stringify([...new Set(readFileSync('/proc/self/maps', 'utf8').split('\\n').filter((l) => l.includes('koffi')).map((l) => l.split(' ').pop()))]));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as string[];
}

describe('the library API', () => {
  it('importing kiln does not load the native addon; a store operation does', async () => {
    expect(await koffiLoadedAfter(`const k = await import('kiln'); k.parseOutputSpec('type=oci,dest=x.tar'); k.parseSize('1GB');`)).toEqual([]);
    // the same probe sees koffi once a libc call was needed (the store's lock), so the empty list above is meaningful
    const loaded = await koffiLoadedAfter(`const k = await import('kiln'); const s = await k.Store.open(${JSON.stringify(path.join(b.dir, 'probe-root'))}); await s.close();`);
    expect(loaded.length).toBeGreaterThan(0);
  });

  it('exports the spec parsers and renderers wrappers need', async () => {
    const k = (await import(path.join(REPO, 'dist', 'index.js'))) as Record<string, unknown>;
    for (const name of ['build', 'parseOutputSpec', 'parseSecretSpec', 'parseCacheFrom', 'parseCacheTo', 'parseAttestSpec', 'parseSize', 'formatSize', 'csvFields', 'createRenderer', 'toSolveStatus', 'openContextSource']) {
      expect(typeof k[name], name).toBe('function');
    }
  });

  it('the example under examples/ compiles against the package and builds, pushes and reports progress', async () => {
    const reg = inject('registry').anon;
    const work = path.join(b.dir, 'example');
    await cp(path.join(REPO, 'examples', 'build-and-push'), work, { recursive: true });
    // as `npm install` of the example would: the kiln package and the Node types
    await mkdir(path.join(work, 'node_modules', '@types'), { recursive: true });
    await symlink(REPO, path.join(work, 'node_modules', 'kiln'));
    await symlink(path.join(REPO, 'node_modules', '@types', 'node'), path.join(work, 'node_modules', '@types', 'node'));
    await run(path.join(REPO, 'node_modules', '.bin', 'tsc'), ['-p', work]);
    const ctx = await b.context({ Dockerfile: `ARG BASE\nFROM $BASE\nRUN echo built-by-example > /e.txt\n` });
    const ref = `${reg}/examples/build-and-push:1`;
    const r = await run(process.execPath, [path.join(work, 'dist', 'build.js'), ctx, ref, '--insecure', '--build-arg', `BASE=${BASE}`], { env: { ...process.env, KILN_ROOT: b.root } });
    const out = JSON.parse(r.stdout) as { imageId: string; digest: string; executedSteps: number };
    expect(out.executedSteps).toBe(1);
    expect(r.stderr).toContain('RUN echo built-by-example');
    expect(r.stderr).toContain(`pushed ${ref}`);
    // the registry serves the manifest the example reported
    const client = new RegistryClient({ insecureRegistries: [reg] });
    const got = await client.getManifest(parseReference(ref));
    expect(got.digest).toBe(out.digest);
  }, 120_000);
});
