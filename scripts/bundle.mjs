#!/usr/bin/env node
// Bundles the compiled CLI (dist/) into dist/bundle/: one entry file plus chunks that
// are loaded only when a command's action imports them, so each `kiln` process reads a
// few files instead of resolving and compiling some hundred modules. bin/kiln loads the
// bundle when it is newer than dist/cli/main.js and falls back to dist/ otherwise.
// koffi stays external: it loads a native addon from its own package directory.
import { build } from 'esbuild';
import { rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
// --outdir DIR writes elsewhere (the tests bundle into a temporary directory)
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 ? path.resolve(process.argv[at + 1]) : path.join(root, 'dist', 'bundle');

await rm(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { main: 'dist/cli/main.js' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['koffi'],
  // the bundled CommonJS dependencies call require(); give the ES module one
  banner: { js: "import { createRequire as __kilnCreateRequire } from 'node:module'; const require = __kilnCreateRequire(import.meta.url);" },
  chunkNames: 'chunks/[name]-[hash]',
  legalComments: 'none',
  logLevel: 'warning',
});
// dist/bundle is ESM whatever an enclosing package.json says
await writeFile(path.join(outdir, 'package.json'), '{ "type": "module" }\n');
