import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rename, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKiln } from '../helpers/kiln-cli.js';
import { VERSION } from '../../src/version.js';
import { BUNDLE_FILE, CODE_CACHE_FILE, SIBLING_BUNDLES, SIBLING_FILES, WRAPPER_HEAD, codeCacheFile } from '../../bin/bundle-loader.mjs';

/** The bundled CLI (scripts/bundle.mjs), made from dist/ by `npm test` before vitest runs. */
const REPO = path.resolve(import.meta.dirname, '..', '..');
let dir: string;
let entry: string;

beforeAll(async () => {
  // inside the checkout: the bundle finds koffi (kept external) in the repository's node_modules
  dir = await mkdtemp(path.join(REPO, 'dist', 'bundle-test-'));
  await promisify(execFile)(process.execPath, [path.join(REPO, 'scripts', 'bundle.mjs'), '--outdir', path.join(dir, 'bundle')]);
  entry = path.join(dir, 'run.mjs');
  const loader = pathToFileURL(path.join(REPO, 'bin', 'bundle-loader.mjs')).href;
  await writeFile(entry, `import { loadBundle } from ${JSON.stringify(loader)};\nconst { exports } = loadBundle(${JSON.stringify(path.join(dir, 'bundle'))});\nprocess.exitCode = await exports.main(process.argv.slice(2));\n`);
}, 120_000);
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Loads the bundle in a plain `node` (as bin/kiln runs) and reports whether V8 took its code cache. */
async function cacheUse(bundleDir: string, file = BUNDLE_FILE): Promise<{ cacheUsed: boolean; cacheRejected: boolean }> {
  const loader = pathToFileURL(path.join(REPO, 'bin', 'bundle-loader.mjs')).href;
  const script = `import(${JSON.stringify(loader)}).then((m) => { const r = m.loadBundle(${JSON.stringify(bundleDir)}, undefined, ${JSON.stringify(file)}); console.log(JSON.stringify({ cacheUsed: r.cacheUsed, cacheRejected: r.cacheRejected })); })`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script]);
  return JSON.parse(stdout) as { cacheUsed: boolean; cacheRejected: boolean };
}

describe('bundled CLI', () => {
  it('prints the version from one CommonJS file holding the CLI, with no import() left for vm.Script to trip on', async () => {
    const r = await runKiln(['--version'], { entry });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(VERSION);
    const text = await readFile(path.join(dir, 'bundle', BUNDLE_FILE), 'utf8');
    // code of the front end, the store and the image model is all in this one file
    for (const marker of ['UnpinnedBaseImage', 'NEEDS_ROOT', 'application/vnd.oci.image.manifest.v1+json']) expect(text).toContain(marker);
    // a dynamic import() inside vm.Script without a module loader fails at run time (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING)
    expect(text).not.toMatch(/\bimport\(\s*["'`a-zA-Z_$]/);
    for (const file of SIBLING_FILES) expect(await readFile(path.join(dir, 'bundle', file), 'utf8')).not.toMatch(/\bimport\(\s*["'`a-zA-Z_$]/);
    // the native addon and the WebAssembly package are required from node_modules, not inlined
    expect(text).toMatch(/\("koffi"\)/);
    // written inside Node's CommonJS wrapper, strict as kiln's ES modules are: the loader compiles the file's text as it is
    expect(text.startsWith(`${WRAPPER_HEAD}"use strict";`)).toBe(true);
    // undici is a bundle of its own beside it, required as ./undici.cjs, and none of its code is in main.cjs
    expect(SIBLING_BUNDLES).toEqual({ 'undici.cjs': 'undici' });
    expect(SIBLING_FILES).toEqual(['undici.cjs']);
    expect(text).toMatch(/require\("\.\/undici\.cjs"\)/);
    const undici = await readFile(path.join(dir, 'bundle', 'undici.cjs'), 'utf8');
    for (const marker of ['llhttp', 'ConnectTimeoutError']) {
      expect(undici).toContain(marker);
      expect(text).not.toContain(marker);
    }
    // ASCII, so the loader takes it as Latin-1 instead of decoding UTF-8 (a non-ASCII byte names the code that brought it)
    for (const file of [BUNDLE_FILE, ...SIBLING_FILES]) {
      const bytes = await readFile(path.join(dir, 'bundle', file));
      const at = bytes.findIndex((b) => b > 0x7f);
      expect(at === -1 ? '' : `${file}: ${bytes.subarray(Math.max(0, at - 60), at + 20).toString('utf8')}`).toBe('');
    }
  });

  it('V8 takes the code cache written beside the bundle, and a cache older than its bundle is not read', async () => {
    const bundleDir = path.join(dir, 'bundle');
    expect(await cacheUse(bundleDir)).toEqual({ cacheUsed: true, cacheRejected: false });
    // and the one written beside undici's bundle
    expect(await cacheUse(bundleDir, 'undici.cjs')).toEqual({ cacheUsed: true, cacheRejected: false });
    expect(codeCacheFile('undici.cjs')).toBe(CODE_CACHE_FILE.replace(BUNDLE_FILE, 'undici.cjs'));
    // a bundle replaced after its cache was written: the stale cache is ignored, not fed to V8
    const copy = path.join(dir, 'replaced');
    await cp(bundleDir, copy, { recursive: true });
    const later = new Date(Date.now() + 5000);
    await utimes(path.join(copy, BUNDLE_FILE), later, later);
    expect(await cacheUse(copy)).toEqual({ cacheUsed: false, cacheRejected: false });
    // a cache written by another Node release is never handed to V8 (a same-V8-version cache from
    // another Node 20 release crashed kiln's image): only a file named for this release is read
    const other = path.join(dir, 'other-node');
    await cp(bundleDir, other, { recursive: true });
    await rename(path.join(other, CODE_CACHE_FILE), path.join(other, CODE_CACHE_FILE.replace(process.version, 'v20.0.0')));
    expect(await cacheUse(other)).toEqual({ cacheUsed: false, cacheRejected: false });
    // a cache for another source is refused by V8 itself, and the bundle still runs
    await writeFile(path.join(copy, BUNDLE_FILE), `${await readFile(path.join(copy, BUNDLE_FILE), 'utf8')}\n// changed\n`);
    const older = new Date(Date.now() - 60_000);
    await utimes(path.join(copy, BUNDLE_FILE), older, older);
    expect(await cacheUse(copy)).toEqual({ cacheUsed: false, cacheRejected: true });
  });

  it('builds an image, and a rebuild is served from the cache', async () => {
    const root = path.join(dir, 'root');
    const ctx = path.join(dir, 'ctx');
    await promisify(execFile)('mkdir', ['-p', ctx]);
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\nCOPY a.txt /b.txt\nLABEL from=bundle\n');
    await writeFile(path.join(ctx, 'a.txt'), 'bundled\n');
    const first = await runKiln(['--root', root, 'build', '--progress', 'plain', '-t', 'localhost/bundle/t:1', ctx], { entry });
    expect(first.stderr + first.stdout).toContain('2 steps ran, 0 cached');
    expect(first.code).toBe(0);
    const again = await runKiln(['--root', root, 'build', '--progress', 'plain', '-t', 'localhost/bundle/t:1', ctx], { entry });
    expect(again.code).toBe(0);
    expect(again.stderr + again.stdout).toContain('0 steps ran, 2 cached');
    const inspect = await runKiln(['--root', root, 'inspect', '--json', 'localhost/bundle/t:1'], { entry });
    expect(inspect.code).toBe(0);
    expect(inspect.stdout).toContain('"from": "bundle"');
  });

  it('undici is read only by a command that reaches a registry: a cached rebuild never loads it, a pull does', async () => {
    // a copy of the bundle whose undici.cjs throws when it is loaded
    const copy = path.join(dir, 'no-undici');
    await cp(path.join(dir, 'bundle'), copy, { recursive: true });
    await writeFile(path.join(copy, 'undici.cjs'), "throw new Error('undici.cjs was loaded');\n");
    await rm(path.join(copy, codeCacheFile('undici.cjs')));
    const copyEntry = path.join(dir, 'run-no-undici.mjs');
    const loader = pathToFileURL(path.join(REPO, 'bin', 'bundle-loader.mjs')).href;
    await writeFile(copyEntry, `import { loadBundle } from ${JSON.stringify(loader)};\nconst { exports } = loadBundle(${JSON.stringify(copy)});\nprocess.exitCode = await exports.main(process.argv.slice(2));\n`);
    const root = path.join(dir, 'root-undici');
    const ctx = path.join(dir, 'ctx-undici');
    await promisify(execFile)('mkdir', ['-p', ctx]);
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\nLABEL lazy=undici\n');
    await writeFile(path.join(ctx, 'a.txt'), 'a\n');
    for (const run of ['cold', 'cached']) {
      const r = await runKiln(['--root', root, 'build', '--progress', 'plain', '-t', 'localhost/bundle/undici:1', ctx], { entry: copyEntry });
      expect(r.stderr, run).not.toContain('undici.cjs was loaded');
      expect(r.code, run).toBe(0);
    }
    // the registry client requires it, through the loader, at its first request
    const pull = await runKiln(['--root', root, 'pull', '127.0.0.1:1/none:1'], { entry: copyEntry });
    expect(pull.code).toBe(1);
    expect(pull.stderr).toContain('undici.cjs was loaded');
    // and the real one answers: the registry is not there
    const real = await runKiln(['--root', root, 'pull', '127.0.0.1:1/none:1'], { entry });
    expect(real.code).toBe(1);
    expect(real.stderr).toContain('ECONNREFUSED');
    // a bundle directory without the file (copied without it, or bundling killed half-way): the package from node_modules
    await rm(path.join(copy, 'undici.cjs'));
    const missing = await runKiln(['--root', root, 'pull', '127.0.0.1:1/none:1'], { entry: copyEntry });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ECONNREFUSED');
  });

  it('a cached rebuild loads neither child_process, worker_threads nor zlib; a cold build reaches them through their stand-ins', async () => {
    // the same entry, reporting which of the three builtins the process loaded
    const probe = path.join(dir, 'probe.mjs');
    const lazy = ['child_process', 'worker_threads', 'zlib'];
    await writeFile(probe, `process.on('exit', () => process.stderr.write('LOADED ' + JSON.stringify(${JSON.stringify(lazy)}.filter((m) => process.moduleLoadList.includes('NativeModule ' + m))) + '\\n'));\nawait import(${JSON.stringify(pathToFileURL(entry).href)});\n`);
    const root = path.join(dir, 'root-lazy');
    const ctx = path.join(dir, 'ctx-lazy');
    await promisify(execFile)('mkdir', ['-p', ctx]);
    await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY a.txt /a.txt\n');
    // more than the eight 1 MiB blocks compressed inline: the ninth starts the gzip pool's workers
    await writeFile(path.join(ctx, 'a.txt'), 'x'.repeat(12 << 20));
    const loaded = (out: string): string[] => JSON.parse(/LOADED (.*)/.exec(out)![1]!) as string[];
    const cold = await runKiln(['--root', root, 'build', '--progress', 'plain', '-t', 'localhost/bundle/lazy:1', ctx], { entry: probe });
    expect(cold.code).toBe(0);
    // the gzip pool's worker and the compressor came through the stand-ins and made a real gzip layer
    expect(loaded(cold.stderr)).toEqual(expect.arrayContaining(['worker_threads', 'zlib']));
    const inspect = await runKiln(['--root', root, 'inspect', '--json', 'localhost/bundle/lazy:1'], { entry });
    expect(inspect.stdout).toContain('application/vnd.oci.image.layer.v1.tar+gzip');
    const warm = await runKiln(['--root', root, 'build', '--progress', 'plain', '-t', 'localhost/bundle/lazy:1', ctx], { entry: probe });
    expect(warm.code).toBe(0);
    expect(warm.stderr + warm.stdout).toContain('0 steps ran, 1 cached');
    expect(loaded(warm.stderr)).toEqual([]);
  });
});
