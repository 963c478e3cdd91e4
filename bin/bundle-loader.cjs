// Loads the bundled CLI (dist/bundle/main.cjs, written by scripts/bundle.mjs) through V8's
// code cache. Node 20 has no compile cache for modules (module.enableCompileCache is 22+),
// and compiling the bundle costs a warm `kiln build` about 40 ms, a quarter of its time.
// A CommonJS bundle compiled through vm.Script can take the cached data V8 produced for
// the same source: the entry then costs a file read and a deserialisation.
//
// The cache is written by scripts/bundle.mjs right after the bundle, in the same
// directory, and is only ever read here, by the same Node release (its name says which).
// V8 itself refuses a cache made under other flags or for a source of another length
// (cachedDataRejected); the mtime check below also refuses one older than the bundle it
// sits beside, so a bundle replaced by hand never runs with its predecessor's bytecode.
// CommonJS, like bin/kiln: an ES-module entry costs every start Node's ES-module loader (about
// 6 ms here). bin/bundle-loader.mjs re-exports it for the ES-module scripts and tests.
'use strict';
const { isAscii } = require('node:buffer');
const { readFileSync, statSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const BUNDLE_FILE = 'main.cjs';
/**
 * The cache is named for the exact Node build that made it. V8's own check (its version
 * string, flags, source length) is not enough: two Node 20 releases can carry the same V8
 * version with different patches, and a cache one makes crashes the other (seen: a bundle
 * built with Node 20.20 and run by 20.19 in kiln's image died with SIGSEGV). Another Node
 * finds no file of its name and compiles the bundle as usual.
 */
const CODE_CACHE_FILE = `main.cjs.${process.version}-${process.arch}.v8-cache`;

/** The exact text V8 compiles: Node's own CommonJS wrapper around the bundle. */
function wrapped(source) {
  return `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
}

/**
 * The bundle's text. The bundle is ASCII (esbuild escapes non-ASCII in strings, the sources escape it
 * in regular expressions, and test/cli/bundle.test.ts checks), and ASCII read as Latin-1 is the same
 * text: a one-byte string made by a copy, where UTF-8 decoding costs a warm build about 8 ms more.
 * A bundle that is not ASCII is decoded as UTF-8, as before.
 */
function readSource(file) {
  const bytes = readFileSync(file);
  return isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

function compile(file, cachedData) {
  return new vm.Script(wrapped(readSource(file)), { filename: file, ...(cachedData ? { cachedData } : {}) });
}

/** Runs the bundle's top level as Node would run a .cjs file; returns its exports. */
function evaluate(script, file) {
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, path.dirname(file));
  return module.exports;
}

function freshCache(file, cacheFile, bundleMtimeMs) {
  try {
    if (statSync(cacheFile).mtimeMs < (bundleMtimeMs ?? statSync(file).mtimeMs)) return undefined;
    return readFileSync(cacheFile);
  } catch {
    return undefined;
  }
}

/**
 * The bundle's exports, compiled from its code cache when that cache is usable.
 * `cacheRejected` says whether V8 refused a cache that was there (the tests assert it
 * does not for the Node that made it). `bundleMtimeMs`, when the caller already stat'ed
 * the bundle, spares a second stat.
 */
function loadBundle(dir, bundleMtimeMs) {
  const file = path.join(dir, BUNDLE_FILE);
  const cachedData = freshCache(file, path.join(dir, CODE_CACHE_FILE), bundleMtimeMs);
  const script = compile(file, cachedData);
  const exports = evaluate(script, file);
  return { exports, cacheUsed: cachedData !== undefined && !script.cachedDataRejected, cacheRejected: cachedData !== undefined && script.cachedDataRejected === true };
}

/**
 * Compiles and evaluates the bundle, runs `main` once per argument vector in `warmups`
 * with its output muted (commands that touch no store: the version, a Dockerfile check),
 * then returns V8's cached data: the top-level code and every function those runs
 * compiled, which a real command would otherwise compile again on each start.
 */
async function makeCodeCache(dir, warmups = []) {
  const file = path.join(dir, BUNDLE_FILE);
  const script = compile(file, undefined);
  const { main } = evaluate(script, file);
  const writes = [process.stdout.write, process.stderr.write];
  process.stdout.write = process.stderr.write = () => true;
  try {
    for (const argv of warmups) await main(argv).catch(() => 1);
  } finally {
    [process.stdout.write, process.stderr.write] = writes;
  }
  return script.createCachedData();
}

module.exports = { BUNDLE_FILE, CODE_CACHE_FILE, loadBundle, makeCodeCache };
