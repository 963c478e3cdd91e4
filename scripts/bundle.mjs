#!/usr/bin/env node
// Bundles the compiled CLI (dist/) into one CommonJS file, dist/bundle/main.cjs, and
// writes V8's code cache for it beside it (bin/bundle-loader.mjs reads both). A `kiln`
// process then reads two files instead of resolving and compiling some hundred modules,
// and skips compiling the bundle. Modules the source imports lazily (`import()`) are
// still evaluated only when a command reaches them; the bundle holds no `import()` at all
// (vm.Script, which takes the code cache, cannot run one), builtins included.
// bin/kiln loads the bundle when it is newer than dist/cli/main.js and falls back to dist/
// otherwise. koffi (a native addon found from its own package directory) and sql.js (a
// WebAssembly file beside its module) stay external and are required at run time.
// undici, 43% of the code, is bundled into a file of its own beside main.cjs, with its own code
// cache: only commands that reach a registry read it (the loader's SIBLING_FILES).
// main.cjs is written inside Node's CommonJS wrapper, the exact text the loader compiles.
import { build } from 'esbuild';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { BUNDLE_FILE, SIBLING_BUNDLES, WRAPPER_HEAD, codeCacheFile } from '../bin/bundle-loader.mjs';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
// --outdir DIR writes elsewhere (the tests bundle into a temporary directory)
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 ? path.resolve(process.argv[at + 1]) : path.join(root, 'dist', 'bundle');

// Builtins a cached build never calls, but that modules on its path import at their top (commander
// imports child_process for subcommand executables; the sandbox, the gzip pool and the compressors
// import child_process, worker_threads and zlib). Loading them costs every process about 10 ms
// (child_process brings net and dgram). In the bundle each is a stand-in whose properties load the
// real module on first use: importers only call or construct what they take from it (spawn, Worker,
// gzipSync…), and a property read through the stand-in's prototype gives exactly the real one.
const LAZY_BUILTINS = ['child_process', 'worker_threads', 'zlib'];
const lazyBuiltins = {
  name: 'lazy-builtins',
  setup(b) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join('|')})$`);
    b.onResolve({ filter }, (args) => {
      const name = args.path.replace(/^node:/, '');
      // the stand-in's own require of the real module stays a plain external require
      if (args.namespace === 'lazy-builtin') return { path: `node:${name}`, external: true };
      return { path: name, namespace: 'lazy-builtin' };
    });
    b.onLoad({ filter: /.*/, namespace: 'lazy-builtin' }, (args) => ({
      loader: 'js',
      contents: [
        'let real;',
        `const load = () => (real ??= require(${JSON.stringify(`node:${args.path}`)}));`,
        // no own properties: esbuild's ESM interop copies none, and every lookup reaches the proxy
        'module.exports = Object.create(new Proxy({}, { get: (_, key) => load()[key], has: (_, key) => key in load() }));',
      ].join('\n'),
    }));
  },
};

// A package with a bundle of its own (the loader's SIBLING_BUNDLES) is required from main.cjs as
// `./<file>`, and the loader hands that require the sibling through its code cache. Its importers
// (the registry client) are modules the source imports lazily, so the require runs only when they
// are reached.
const SIBLINGS = Object.fromEntries(Object.entries(SIBLING_BUNDLES).map(([file, pkg]) => [pkg, file]));
const siblings = {
  name: 'sibling-bundles',
  setup(b) {
    b.onResolve({ filter: new RegExp(`^(${Object.keys(SIBLINGS).join('|')})$`) }, (args) => ({ path: `./${SIBLINGS[args.path]}`, external: true }));
  },
};
const minify = { legalComments: 'none', minifyWhitespace: true, minifySyntax: true, minifyIdentifiers: true, logLevel: 'warning' };

await rm(outdir, { recursive: true, force: true });
// the siblings first: bin/kiln takes the bundle once main.cjs is there, and main.cjs requires them
for (const [pkg, file] of Object.entries(SIBLINGS)) {
  await build({
    absWorkingDir: root,
    entryPoints: [createRequire(path.join(root, 'package.json')).resolve(pkg)],
    outfile: path.join(outdir, file),
    bundle: true,
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    supported: { 'dynamic-import': false },
    ...minify,
  });
}
await build({
  plugins: [lazyBuiltins, siblings],
  absWorkingDir: root,
  entryPoints: { main: 'dist/cli/main.js' },
  outdir,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external: ['koffi', 'sql.js'],
  // import() becomes a require() wrapped in a promise: vm.Script has no module loader
  supported: { 'dynamic-import': false },
  // the two createRequire(import.meta.url) calls resolve from the bundle's own location
  define: { 'import.meta.url': '__kilnBundleUrl' },
  // Node's CommonJS wrapper around the whole file (the loader compiles this text as it is), and
  // "use strict" first in it: kiln's modules are ES modules, strict as dist/ runs them (esbuild's own
  // directive came after the banner's statement, where it is no directive)
  banner: { js: `${WRAPPER_HEAD}"use strict";const __kilnBundleUrl = require('node:url').pathToFileURL(__filename).href;` },
  footer: { js: '})' },
  ...minify,
});

// The cache is made by a plain `node` (no flags, as bin/kiln runs) in its own process, so
// the bundle runs nowhere but there; V8 refuses a cache made under other flags. It holds what a
// cached rebuild compiles (option parsing, the Dockerfile parser, the planner, the store and cache
// lookups) and, where this machine can run a container (root, busybox-static's /bin/busybox),
// what executing steps compiles: a COPY, a RUN in the sandbox, the layer written from its upperdir.
// V8 deserialises all of a cache on every start, into memory touched for the first time, which
// costs some 20 µs a page on the VMs kiln is measured on, while a function left out compiles on
// its first call, in the commands that reach it: on a machine where a RUN costs 30 ms, compiling
// the sandbox and the layer writer on the first one cost a cold 30-step build more (0.93× its
// time with them in the cache) than deserialising them costs a cached rebuild (1.02×). So the
// cold build that fills the throw-away store for the rebuild runs first, in a process of its own,
// and the cache's process runs the build that executes steps (on a Dockerfile of its own) and then
// the cached rebuild; a failing run only leaves its functions out of the cache.
const warm = await mkdtemp(path.join(tmpdir(), 'kiln-bundle-'));
try {
  await writeFile(path.join(warm, 'a'), '');
  const store = path.join(warm, 'root');
  const rebuild = ['--root', store, 'build', '--progress', 'plain', '-t', 'localhost/kiln-bundle/warm:1', '-f', path.join(warm, 'Dockerfile'), warm];
  await writeFile(path.join(warm, 'Dockerfile'), 'FROM scratch\nARG A=1\nCOPY a /a\nENV B=$A\nLABEL x=y\n');
  const loader = pathToFileURL(path.join(root, 'bin', 'bundle-loader.mjs')).href;
  const env = { ...process.env, KILN_ROOT: store };
  // the cold build, through the new bundle (it has no cache yet); its exit status does not matter
  const cold = `import(${JSON.stringify(loader)}).then((m) => m.loadBundle(${JSON.stringify(outdir)}).exports.main(${JSON.stringify(rebuild)})).then((code) => process.exit(code), () => process.exit(1))`;
  spawnSync(process.execPath, ['-e', cold], { env, stdio: 'ignore', timeout: 120_000 });
  const executing = await stepsBuild(warm, store);
  // each cache in a process of its own: a sibling's cache holds only its own top level
  for (const [file, argv] of [[BUNDLE_FILE, [...executing, rebuild]], ...Object.values(SIBLINGS).map((f) => [f, []])]) {
    const cacheFile = path.join(outdir, codeCacheFile(file));
    const script = `import(${JSON.stringify(loader)}).then(async (m) => (await import('node:fs')).writeFileSync(${JSON.stringify(cacheFile)}, await m.makeCodeCache(${JSON.stringify(outdir)}, ${JSON.stringify(argv)}, ${JSON.stringify(file)})))`;
    execFileSync(process.execPath, ['-e', script], { env, stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 });
  }
  const kib = (file) => Math.round(statSync(path.join(outdir, file)).size / 1024);
  const files = [BUNDLE_FILE, ...Object.values(SIBLINGS)].map((f) => `${f} ${kib(f)} KiB, code cache ${kib(codeCacheFile(f))} KiB`);
  process.stdout.write(`bundled dist/cli into ${path.relative(root, outdir)}: ${files.join('; ')}\n`);
} finally {
  await rm(warm, { recursive: true, force: true });
}

/**
 * The argv of a build that executes a COPY and RUN steps (sandbox, overlay, upperdir layer), for
 * the code cache's warm-up; none where no container can run here (not root, or no static busybox
 * to be the image's /bin/sh). `--network host`: no network namespace or user-mode networking to
 * set up for a step that only runs shell builtins.
 */
async function stepsBuild(dir, store) {
  const busybox = '/bin/busybox';
  if (process.getuid?.() !== 0 || !existsSync(busybox)) return [];
  const ctx = path.join(dir, 'steps');
  await mkdir(ctx);
  await copyFile(busybox, path.join(ctx, 'sh'));
  await writeFile(path.join(ctx, 'b'), 'b\n');
  await writeFile(path.join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY sh /bin/sh\nWORKDIR /w\nRUN echo a > /w/a\nENV X=1\nCOPY b /w/b\nRUN test -f /w/b\n');
  return [['--root', store, 'build', '--progress', 'plain', '--network', 'host', '-t', 'localhost/kiln-bundle/steps:1', ctx]];
}
