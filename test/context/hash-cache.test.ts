import { createHash } from 'node:crypto';
import { appendFileSync, lstatSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HashCache, hashFile } from '../../src/context/hash-cache.js';
import type { HostFile } from '../../src/context/fs-view.js';

const dir = mkdtempSync(join(tmpdir(), 'kiln-hashcache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const hostOf = (path: string): HostFile => {
  const st = lstatSync(path);
  return { path, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, nlink: st.nlink };
};

describe('hashFile', () => {
  it('hashes every byte whether the listed size is right, too small (the file grew) or too big (it shrank), across its 1 MiB reads', () => {
    const MiB = 1 << 20;
    for (const size of [0, 1, 4095, MiB - 1, MiB, MiB + 1, 3 * MiB + 5]) {
      const bytes = Buffer.alloc(size);
      for (let i = 0; i < size; i += 4096) bytes[i] = (i / 4096 + size) & 0xff;
      const f = join(dir, `f-${size}`);
      writeFileSync(f, bytes);
      for (const listed of [undefined, size, Math.max(0, size - 1), size + 1, 0, size + MiB]) {
        expect(hashFile(f, listed), `size ${size}, listed ${listed}`).toBe(sha(bytes));
      }
    }
  });
});

describe('HashCache', () => {
  it('answers from a remembered hash without reading, until the file changes', () => {
    const f = join(dir, 'remembered');
    writeFileSync(f, 'on disk');
    const cache = HashCache.load();
    const host = hostOf(f);
    expect(cache.has(host)).toBe(false);
    // what a layer writer read: the cache trusts it for this stat key, so the file is not opened again
    cache.remember(host, sha(Buffer.from('what the writer read')));
    expect(cache.has(host)).toBe(true);
    expect(cache.fileSha256(host)).toBe(sha(Buffer.from('what the writer read')));
    expect(cache.misses).toBe(0);
    appendFileSync(f, ' and more');
    const changed = hostOf(f);
    expect(cache.has(changed)).toBe(false);
    expect(cache.fileSha256(changed)).toBe(sha(Buffer.from('on disk and more')));
    expect(cache.misses).toBe(1);
    truncateSync(f, 2);
    expect(cache.fileSha256(hostOf(f))).toBe(sha(Buffer.from('on')));
  });

  it('keeps remembered hashes across a save and load', () => {
    const f = join(dir, 'saved');
    writeFileSync(f, 'x');
    const file = join(dir, 'cache.json');
    const cache = HashCache.load(file);
    cache.remember(hostOf(f), 'ab'.repeat(32));
    cache.save();
    const again = HashCache.load(file);
    expect(again.has(hostOf(f))).toBe(true);
    expect(again.fileSha256(hostOf(f))).toBe('ab'.repeat(32));
  });

  it('saves thousands of records, learned and loaded, piece by piece, as the JSON a load reads back whole', () => {
    const file = join(dir, 'many.json');
    // fractional times and large numbers, written as JSON writes them; paths that need escaping
    const host = (i: number): HostFile => ({ path: `/ctx/d${i % 7}/f "${i}"\\x`, dev: 2049, ino: 9_007_199_254_740_000 + i, size: i, mtimeMs: 1_733_541_234_567.125 + i, ctimeMs: 1_733_541_234_568.5, nlink: 1 });
    const hex = (i: number): string => sha(Buffer.from(String(i)));
    const cache = HashCache.load(file);
    for (let i = 0; i < 2100; i++) cache.remember(host(i), hex(i)); // two learned slices, several pieces each
    cache.save();
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { v: number; files: unknown[] };
    expect(doc.files.length).toBe(2100 * 7);
    expect(doc.files.slice(7 * 300, 7 * 301)).toEqual([host(300).path, 2049, host(300).ino, 300, host(300).mtimeMs, host(300).ctimeMs, hex(300)]);
    // loaded records and newly learned ones in one file
    const again = HashCache.load(file);
    for (let i = 2100; i < 2400; i++) again.remember(host(i), hex(i));
    again.save();
    const last = HashCache.load(file);
    expect(last.size).toBe(2400);
    for (const i of [0, 255, 256, 2047, 2048, 2099, 2100, 2399]) expect(last.fileSha256(host(i)), String(i)).toBe(hex(i));
  });

  it('saves one record per file: the latest of a file remembered twice, none of a forgotten one, and the file as written when nothing was superseded', () => {
    const a = join(dir, 'a');
    const b = join(dir, 'staged', 'b');
    writeFileSync(a, 'a');
    // a staged file (as an unpacked ADD archive's), forgotten before the save
    writeFileSync(join(dir, 'staged-b'), 'b');
    const file = join(dir, 'compact.json');
    const cache = HashCache.load(file);
    cache.remember(hostOf(a), '11'.repeat(32));
    cache.save();
    const plain = JSON.parse(readFileSync(file, 'utf8')) as { files: unknown[] };
    expect(plain.files).toHaveLength(7);

    const reloaded = HashCache.load(file);
    appendFileSync(a, 'b');
    reloaded.remember(hostOf(a), '22'.repeat(32));
    reloaded.remember({ ...hostOf(join(dir, 'staged-b')), path: b }, '33'.repeat(32));
    reloaded.forget(`${join(dir, 'staged')}/`);
    reloaded.save();
    const doc = JSON.parse(readFileSync(file, 'utf8')) as { files: unknown[] };
    expect(doc.files).toHaveLength(7);
    expect(doc.files[0]).toBe(a);
    expect(doc.files[6]).toBe('22'.repeat(32));
    const last = HashCache.load(file);
    expect(last.size).toBe(1);
    expect(last.fileSha256(hostOf(a))).toBe('22'.repeat(32));
  });
});
