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
const { closeSync, existsSync, fstatSync, openSync, readSync, statSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const vm = require('node:vm');

const BUNDLE_FILE = 'main.cjs';
/**
 * Packages bundled into files of their own beside main.cjs (file name → package), which the main
 * bundle requires as `./<file>` (scripts/bundle.mjs builds them from this list): undici is 43% of
 * kiln's code and a cached build never sends a request, so its text is read and compiled only when
 * a command reaches the registry.
 */
const SIBLING_BUNDLES = { 'undici.cjs': 'undici' };
const SIBLING_FILES = Object.keys(SIBLING_BUNDLES);

/**
 * A code cache is named for its bundle file and the exact Node build that made it. V8's own
 * check (its version string, flags, source length) is not enough: two Node 20 releases can
 * carry the same V8 version with different patches, and a cache one makes crashes the other
 * (seen: a bundle built with Node 20.20 and run by 20.19 in kiln's image died with SIGSEGV).
 * Another Node finds no file of its name and compiles the bundle as usual.
 */
function codeCacheFile(bundleFile) {
  return `${bundleFile}.${process.version}-${process.arch}.v8-cache`;
}
const CODE_CACHE_FILE = codeCacheFile(BUNDLE_FILE);

/** Node's own CommonJS wrapper: V8 compiles the bundle's text inside it. */
const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname) {';

/**
 * The exact text V8 compiles: the bundle inside Node's CommonJS wrapper. main.cjs is written
 * with the wrapper already around it (scripts/bundle.mjs; so it runs only through this loader:
 * given to plain Node it is an expression nobody calls), and its text goes to V8 as read,
 * where wrapping it here made V8 flatten one more copy of the whole text before compiling (a
 * cached build took 0.97× the time without that copy). Any other file (a sibling bundle, which
 * stays an ordinary CommonJS module, or a main.cjs from before) is wrapped here.
 */
function wrapped(source) {
  return source.startsWith(WRAPPER_HEAD) ? source : `${WRAPPER_HEAD}${source}\n})`;
}

/**
 * A file's bytes, as a view of exactly the file's length: read into `into` when it is big enough,
 * else into a new buffer of at least `room` bytes.
 */
function readAll(file, { into, room = 0 } = {}) {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = into !== undefined && into.length >= size ? into : Buffer.allocUnsafeSlow(Math.max(size, room));
    let n = 0;
    while (n < size) {
      const got = readSync(fd, buf, n, size - n, n);
      if (got === 0) break; // shrank while read: V8 refuses a cache of another length, and a cut bundle fails to compile
      n += got;
    }
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/**
 * The bundle's text. The bundle is ASCII (esbuild escapes non-ASCII in strings, the sources escape it
 * in regular expressions, and test/cli/bundle.test.ts checks), and ASCII read as Latin-1 is the same
 * text: a one-byte string made by a copy, where UTF-8 decoding costs a warm build about 8 ms more.
 * A bundle that is not ASCII is decoded as UTF-8, as before. Every decoding copies the bytes into
 * the string, so the buffer they were read into is free for the code cache once this returns.
 */
function decodeSource(bytes) {
  return isAscii(bytes) ? bytes.toString('latin1') : bytes.toString('utf8');
}

function compile(file, source, cachedData) {
  return new vm.Script(wrapped(source), { filename: file, ...(cachedData ? { cachedData } : {}) });
}

/**
 * The `require` a bundle runs with: Node's, resolving from the bundle's own file, except for the
 * sibling bundles, which come through this loader with their code cache (each once). A sibling
 * that is not there (a copy of the directory without it, a bundling step killed half-way) is the
 * package itself from node_modules: slower to load, the same code.
 */
function bundleRequire(file) {
  const nodeRequire = createRequire(file);
  const dir = path.dirname(file);
  const siblings = new Map();
  const req = (id) => {
    const name = id.startsWith('./') ? id.slice(2) : undefined;
    if (name === undefined || !Object.hasOwn(SIBLING_BUNDLES, name)) return nodeRequire(id);
    let loaded = siblings.get(name);
    if (loaded === undefined) {
      loaded = existsSync(path.join(dir, name)) ? loadBundle(dir, undefined, name).exports : nodeRequire(SIBLING_BUNDLES[name]);
      siblings.set(name, loaded);
    }
    return loaded;
  };
  return Object.assign(req, { resolve: nodeRequire.resolve, cache: nodeRequire.cache, main: nodeRequire.main });
}

/** Runs the bundle's top level as Node would run a .cjs file; returns its exports. */
function evaluate(script, file) {
  const module = { exports: {} };
  script.runInThisContext()(module.exports, bundleRequire(file), module, file, path.dirname(file));
  return module.exports;
}

/** The size of the code cache beside the bundle, when it is there and not older than the bundle. */
function freshCacheSize(file, cacheFile, bundleMtimeMs) {
  try {
    const st = statSync(cacheFile);
    return st.mtimeMs >= (bundleMtimeMs ?? statSync(file).mtimeMs) ? st.size : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The bundle's text and its code cache (undefined when there is none to use), both read into one
 * buffer, the cache after the text is decoded. On the VMs kiln is measured on, a page of memory
 * touched for the first time costs some 20 µs, and a second buffer for the cache would be some
 * 180 more such pages (the bundle's buffer is garbage once its text is a string).
 */
function readBundle(file, cacheFile, bundleMtimeMs) {
  const cacheSize = freshCacheSize(file, cacheFile, bundleMtimeMs);
  const bytes = readAll(file, { room: cacheSize });
  const source = decodeSource(bytes);
  if (cacheSize === undefined) return { source, cachedData: undefined };
  try {
    // allocUnsafeSlow's buffer is its own ArrayBuffer, from offset 0
    return { source, cachedData: readAll(cacheFile, { into: Buffer.from(bytes.buffer) }) };
  } catch {
    return { source, cachedData: undefined };
  }
}

/**
 * A bundle's exports (main.cjs unless `name` says which), compiled from its code cache when that
 * cache is usable. `cacheRejected` says whether V8 refused a cache that was there (the tests assert
 * it does not for the Node that made it). `bundleMtimeMs`, when the caller already stat'ed the
 * bundle, spares a second stat.
 */
function loadBundle(dir, bundleMtimeMs, name = BUNDLE_FILE) {
  const file = path.join(dir, name);
  const { source, cachedData } = readBundle(file, path.join(dir, codeCacheFile(name)), bundleMtimeMs);
  const script = compile(file, source, cachedData);
  const exports = evaluate(script, file);
  return { exports, cacheUsed: cachedData !== undefined && !script.cachedDataRejected, cacheRejected: cachedData !== undefined && script.cachedDataRejected === true };
}

/**
 * Compiles and evaluates the bundle, runs `main` once per argument vector in `warmups`
 * with its output muted (scripts/bundle.mjs gives a cached rebuild on a throw-away store),
 * then returns V8's cached data: the top-level code and every function those runs
 * compiled, which a real command would otherwise compile again on each start.
 * For a sibling bundle (`name`), no warm-up: its top level is evaluated and cached.
 */
async function makeCodeCache(dir, warmups = [], name = BUNDLE_FILE) {
  const file = path.join(dir, name);
  const script = compile(file, decodeSource(readAll(file)), undefined);
  const { main } = evaluate(script, file);
  if (name !== BUNDLE_FILE) return script.createCachedData();
  const writes = [process.stdout.write, process.stderr.write];
  process.stdout.write = process.stderr.write = () => true;
  try {
    for (const argv of warmups) await main(argv).catch(() => 1);
  } finally {
    [process.stdout.write, process.stderr.write] = writes;
  }
  return script.createCachedData();
}

module.exports = { BUNDLE_FILE, CODE_CACHE_FILE, SIBLING_BUNDLES, SIBLING_FILES, WRAPPER_HEAD, codeCacheFile, loadBundle, makeCodeCache, readBundle };
