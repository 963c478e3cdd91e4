import { chmodSync, existsSync, readFileSync, utimesSync, writeFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BuildContext } from '../../src/context/build-context.js';
import { walk } from '../../src/context/fs-view.js';
import { HashCache } from '../../src/context/hash-cache.js';
import { isKilnError } from '../../src/errors/index.js';
import { makeTree, tempDir } from '../steps/copy-helpers.js';

describe('BuildContext', () => {
  it('applies .dockerignore, keeping excluded directories that hold re-included files', () => {
    const dir = makeTree(tempDir(), { 'a.txt': 'A', 'docs/keep.txt': 'K', 'docs/other.txt': 'O', 'node_modules/x/i.js': 'x', '.dockerignore': 'docs\n!docs/keep.txt\nnode_modules\n' });
    const ctx = BuildContext.open(dir);
    expect([...walk(ctx, '')].map(([p]) => p)).toEqual(['.dockerignore', 'a.txt', 'docs', 'docs/keep.txt']);
    expect(ctx.lstat('node_modules/x/i.js')).toBeUndefined();
  });

  it('uses <Dockerfile>.dockerignore beside a custom Dockerfile', () => {
    const dir = makeTree(tempDir(), { 'a.txt': 'A', 'b.txt': 'B', '.dockerignore': 'a.txt\n', 'ci/app.Dockerfile': 'FROM scratch', 'ci/app.Dockerfile.dockerignore': 'b.txt\n' });
    const ctx = BuildContext.open(dir, { dockerfile: join(dir, 'ci/app.Dockerfile') });
    expect(ctx.lstat('a.txt')).toBeDefined();
    expect(ctx.lstat('b.txt')).toBeUndefined();
  });

  it('refuses a missing context directory', () => {
    let err: unknown;
    try { BuildContext.open('/nonexistent/kiln-ctx'); } catch (e) { err = e; }
    expect(isKilnError(err) && err.code === 'CONTEXT').toBe(true);
  });

  it('never lstats through a symlinked directory', () => {
    const outside = makeTree(tempDir(), { 'secret': 'S' });
    const dir = makeTree(tempDir(), { 'a': 'A' });
    symlinkSync(outside, join(dir, 'out'));
    expect(BuildContext.open(dir).lstat('out/secret')).toBeUndefined();
  });
});

describe('hashSelection and the stat-keyed hash cache', () => {
  it('hits the cache for unchanged files, survives a reload, and ignores mtime', () => {
    const dir = makeTree(tempDir(), { 'a.txt': 'A', 'src/b.txt': 'B', 'src/c.txt': 'C', 'other.txt': 'O' });
    const cacheFile = join(tempDir('kiln-cache-'), 'hashes.json');
    const c1 = HashCache.load(cacheFile);
    const d1 = BuildContext.open(dir).hashSelection(['a.txt', 'src'], c1);
    expect(c1.misses).toBe(3);
    c1.save();
    expect(existsSync(cacheFile)).toBe(true);

    const c2 = HashCache.load(cacheFile);
    const d2 = BuildContext.open(dir).hashSelection(['a.txt', 'src'], c2);
    expect(d2).toBe(d1);
    expect(c2.hits).toBe(3);
    expect(c2.misses).toBe(0);

    // touching mtime re-reads the file (stat changed) but the digest stays
    utimesSync(join(dir, 'src/b.txt'), 5, 5);
    const c3 = HashCache.load(cacheFile);
    expect(BuildContext.open(dir).hashSelection(['a.txt', 'src'], c3)).toBe(d1);
    expect(c3.misses).toBe(1);

    // a file outside the selection changes nothing
    writeFileSync(join(dir, 'other.txt'), 'changed');
    expect(BuildContext.open(dir).hashSelection(['a.txt', 'src'], c3)).toBe(d1);

    chmodSync(join(dir, 'a.txt'), 0o600);
    expect(BuildContext.open(dir).hashSelection(['a.txt', 'src'], c3)).not.toBe(d1);
  });

  it('detects a same-size rewrite through ctime', () => {
    const dir = makeTree(tempDir(), { 'a.txt': 'AAAA' });
    const cache = HashCache.load();
    const d1 = BuildContext.open(dir).hashSelection(['a.txt'], cache);
    const st = { t: 1_000_000 };
    utimesSync(join(dir, 'a.txt'), st.t, st.t);
    writeFileSync(join(dir, 'a.txt'), 'BBBB');
    utimesSync(join(dir, 'a.txt'), st.t, st.t);
    expect(BuildContext.open(dir).hashSelection(['a.txt'], cache)).not.toBe(d1);
  });

  it('saves many records in slices that read back as one document', () => {
    // 5,000 records are 35,000 array elements: three slices of the writer's 14,336
    const host = (i: number) => ({ path: `/ctx/d${i % 7}/f\u00e9${i}`, dev: 2049, ino: 1000 + i, size: i, mtimeMs: 1.5e12 + i / 8, ctimeMs: 1.6e12 + i / 3, nlink: 1 });
    const hex = (i: number) => i.toString(16).padStart(64, '0');
    const file = join(tempDir('kiln-cache-'), 'hashes.json');
    const c1 = HashCache.load(file);
    for (let i = 0; i < 5000; i++) c1.remember(host(i), hex(i));
    c1.remember({ ...host(42), size: 7 }, hex(7)); // supersedes record 42: the save compacts
    c1.save();
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { v: number; files: unknown[] };
    expect(doc.v).toBe(2);
    expect(doc.files.length).toBe(5000 * 7);
    const c2 = HashCache.load(file);
    expect(c2.size).toBe(5000);
    for (let i = 0; i < 5000; i++) {
      const h = i === 42 ? { ...host(42), size: 7 } : host(i);
      expect(c2.has(h)).toBe(true);
    }
    expect(c2.has(host(42))).toBe(false);
    expect(c2.fileSha256({ ...host(42), size: 7 })).toBe(hex(7));
    expect(c2.fileSha256(host(4999))).toBe(hex(4999));
    expect(c2.misses).toBe(0);
    // learned on top of a loaded file, over more than two of the learned records' slices (2,048
    // each), with none superseded: the save writes the loaded records, then each slice, in order
    for (let i = 5000; i < 10000; i++) c2.remember(host(i), hex(i));
    expect(c2.fileSha256(host(9999))).toBe(hex(9999));
    expect(c2.fileSha256(host(6000))).toBe(hex(6000));
    expect(c2.has({ ...host(6000), ctimeMs: host(6000).ctimeMs + 1e-3 })).toBe(false);
    c2.save();
    const doc2 = JSON.parse(readFileSync(file, 'utf8')) as { v: number; files: unknown[] };
    expect(doc2.files.length).toBe(10000 * 7);
    expect(doc2.files.slice(9999 * 7)).toEqual([host(9999).path, 2049, 1000 + 9999, 9999, host(9999).mtimeMs, host(9999).ctimeMs, hex(9999)]);
    const c3 = HashCache.load(file);
    for (let i = 0; i < 10000; i += 97) expect(c3.fileSha256(i === 42 ? { ...host(42), size: 7 } : host(i))).toBe(i === 42 ? hex(7) : hex(i));
    expect(c3.misses).toBe(0);
    // a learned record superseded and one forgotten: the compacting save keeps the rest
    c3.remember(host(7000), hex(1));
    c3.remember({ ...host(9000), path: '/staged/x' }, hex(2));
    c3.forget('/staged/');
    c3.save();
    const c4 = HashCache.load(file);
    expect(c4.size).toBe(10000);
    expect(c4.fileSha256(host(7000))).toBe(hex(1));
    expect(c4.fileSha256(host(9000))).toBe(hex(9000));
    expect(c4.misses).toBe(0);
  });

  it('a corrupt cache file is an empty cache', () => {
    const f = join(tempDir(), 'bad.json');
    writeFileSync(f, '{not json');
    expect(HashCache.load(f).size).toBe(0);
  });
});

describe('hashSelection paths', () => {
  it('accepts "." and "/"-prefixed paths and refuses ".."', () => {
    const dir = makeTree(tempDir(), { 'a.txt': 'A' });
    const ctx = BuildContext.open(dir);
    const cache = HashCache.load();
    expect(ctx.hashSelection(['.'], cache)).toBe(ctx.hashSelection(['/'], cache));
    expect(ctx.hashSelection(['./a.txt'], cache)).toBe(ctx.hashSelection(['a.txt'], cache));
    expect(() => ctx.hashSelection(['../x'], cache)).toThrow(/outside the build context/);
    expect(() => ctx.hashSelection(['nope'], cache)).toThrow(/not found/);
  });
});
