import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/media-types.js';
import { sha256 } from '../../src/image/digest.js';
import { gzipStream, GZIP_BLOCK } from '../../src/layer/compress.js';
import { compressBlock } from '../../src/layer/gzip-block.js';
import * as zlib from 'node:zlib';
import { tarStream } from '../../src/layer/tar-writer.js';
import { writeLayer } from '../../src/layer/write-layer.js';
import { extractLayer } from '../../src/layer/extract.js';
import { getXattr } from '../../src/layer/xattr.js';
import type { LayerEntry } from '../../src/layer/types.js';
import { DirBlobStore } from './dir-blob-store.js';
import { CAP_NET_BIND, collect, dirEntry, fileEntry, sh, tempDir } from './helpers.js';

const tmp = tempDir();

/** Every path under `root` with type, mode, owner, mtime and content digest (or device numbers, link target). */
function listTree(root: string, rel = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, rel)).sort()) {
    const p = rel ? `${rel}/${name}` : name;
    const st = lstatSync(join(root, p));
    const head = `${p} ${st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other'} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${Math.floor(st.mtimeMs / 1000)}`;
    if (st.isFile()) {
      const cap = getXattr(join(root, p), 'security.capability');
      out.push(`${head} ${sha256(readFileSync(join(root, p))).slice(7)}${cap ? ` cap=${cap.toString('hex')}` : ''}`);
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      out.push(`${head} ${Math.floor(st.rdev / 256)}:${st.rdev % 256}`);
    } else {
      out.push(head);
    }
    if (st.isDirectory()) out.push(...listTree(root, p));
  }
  return out;
}
afterAll(() => tmp.cleanup());
const store = new DirBlobStore(join(tmp.path, 'store'));

const long150 = `d/${'a'.repeat(60)}/${'b'.repeat(85)}`; // > 100 bytes, splits into ustar prefix + name
const long300 = `d/${'c'.repeat(300)}`; // > 255 bytes, needs PAX path

function sampleEntries(): LayerEntry[] {
  return [
    dirEntry('d', { mode: 0o1777 }),
    fileEntry(`d/${'a'.repeat(60)}`, ''),
    fileEntry(long150, 'long150'),
    fileEntry(long300, 'long300'),
    { path: 'd/fifo', type: 'fifo', mode: 0o600, uid: 0, gid: 0, mtime: 1_700_000_000 },
    fileEntry('d/hello', 'hello world\n', { mode: 0o4755, uid: 3_000_000, gid: 3_000_001, xattrs: { 'security.capability': CAP_NET_BIND, 'user.note': Buffer.from('hi\0there\xff', 'latin1') } }),
    { path: 'd/link', type: 'hardlink', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000, linkname: 'd/hello' },
    { path: 'd/null', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: 1_700_000_000, devmajor: 1, devminor: 3 },
    { path: 'd/sda', type: 'block', mode: 0o660, uid: 0, gid: 6, mtime: 1_700_000_000, devmajor: 8, devminor: 0 },
    { path: 'd/sym', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1_700_000_000, linkname: `../${'t'.repeat(150)}` },
    fileEntry('z', 'late', { mtime: 1_900_000_000.75 }),
  ];
}

describe('tar encoding', () => {
  it('is read back by GNU tar field for field', async () => {
    const tar = await collect(tarStream(sampleEntries()));
    expect(tar.length % 512).toBe(0);
    const listing = sh('tar', ['--numeric-owner', '--full-time', '-tvf', '-'], tar).toString().trim().split('\n');
    expect(listing).toEqual([
      'drwxrwxrwt 0/0               0 2023-11-14 22:13:20 d/',
      `-rw-r--r-- 0/0               0 2023-11-14 22:13:20 d/${'a'.repeat(60)}`,
      `-rw-r--r-- 0/0               7 2023-11-14 22:13:20 ${long150}`,
      `-rw-r--r-- 0/0               7 2023-11-14 22:13:20 ${long300}`,
      'prw------- 0/0               0 2023-11-14 22:13:20 d/fifo',
      '-rwsr-xr-x 3000000/3000001  12 2023-11-14 22:13:20 d/hello',
      'hrwxr-xr-x 0/0               0 2023-11-14 22:13:20 d/link link to d/hello',
      'crw-rw-rw- 0/0             1,3 2023-11-14 22:13:20 d/null',
      'brw-rw---- 0/6             8,0 2023-11-14 22:13:20 d/sda',
      `lrwxrwxrwx 0/0               0 2023-11-14 22:13:20 d/sym -> ../${'t'.repeat(150)}`,
      '-rw-r--r-- 0/0               4 2030-03-17 17:46:40 z',
    ]);
  });

  it('writes ustar headers byte for byte (numeric ids, empty uname/gname, trailing / on dirs)', async () => {
    const tar = await collect(tarStream([dirEntry('etc'), fileEntry('etc/passwd', 'root:x:0:0::/root:/bin/sh\n', { uid: 1000, gid: 1000 })]));
    const h = tar.subarray(0, 512);
    expect(h.toString('latin1', 0, 4)).toBe('etc/');
    expect(h.toString('latin1', 100, 108)).toBe('0000755\0');
    expect(h[156]).toBe(0x35);
    expect(h.toString('latin1', 257, 265)).toBe('ustar\x0000');
    expect(h.subarray(265, 329).every((b) => b === 0)).toBe(true);
    const f = tar.subarray(512, 1024);
    expect(f.toString('latin1', 0, 11)).toBe('etc/passwd\0');
    expect(f.toString('latin1', 108, 124)).toBe('0001750\u00000001750\0');
    expect(f.toString('latin1', 124, 136)).toBe('00000000032\0');
    expect(f.toString('latin1', 136, 148)).toBe('14524770400\0');
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : f[i]!;
    expect(f.toString('latin1', 148, 156)).toBe(`${sum.toString(8).padStart(6, '0')}\0 `);
    expect(tar.length).toBe(512 * 3 + 1024);
  });

  it('writes xattrs as SCHILY.xattr PAX records with the exact bytes', async () => {
    const tar = await collect(tarStream([fileEntry('bin', 'x', { xattrs: { 'security.capability': CAP_NET_BIND } })]));
    expect(tar[156]).toBe(0x78);
    const rec = Buffer.concat([Buffer.from(' SCHILY.xattr.security.capability='), CAP_NET_BIND, Buffer.from('\n')]);
    const len = rec.length + 2;
    expect(tar.subarray(512, 512 + len)).toEqual(Buffer.concat([Buffer.from(String(len)), rec]));
    const out = join(tmp.path, 'xattr-gnu');
    sh('mkdir', ['-p', out]);
    sh('tar', ['--xattrs', '--xattrs-include=*', '-xf', '-', '-C', out], tar);
    const dump = sh('getfattr', ['-e', 'hex', '-n', 'security.capability', join(out, 'bin')]).toString();
    expect(dump).toContain(`security.capability=0x${CAP_NET_BIND.toString('hex')}`);
  });

  it('refuses entries out of order, duplicates, and bad paths', async () => {
    await expect(collect(tarStream([fileEntry('b', ''), fileEntry('a', '')]))).rejects.toThrow(/out of order: "a" after "b"/);
    await expect(collect(tarStream([fileEntry('a', ''), fileEntry('a', '')]))).rejects.toThrow(/duplicate layer entry "a"/);
    await expect(collect(tarStream([fileEntry('a-b', ''), fileEntry('a/x', '')]))).rejects.toThrow(/out of order/);
    await expect(collect(tarStream([fileEntry('../x', '')]))).rejects.toThrow(/invalid layer entry path/);
    await expect(collect(tarStream([fileEntry('x', 'abc', { size: 5 })]))).rejects.toThrow(/changed while writing/);
  });

  it('reads content from sourcePath', async () => {
    const src = join(tmp.path, 'src.txt');
    writeFileSync(src, 'from disk');
    const tar = await collect(tarStream([{ path: 'f', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 9, sourcePath: src }]));
    expect(sh('tar', ['-xOf', '-', 'f'], tar).toString()).toBe('from disk');
    const entry = (size: number) => [{ path: 'f', type: 'file' as const, mode: 0o644, uid: 0, gid: 0, mtime: 0, size, sourcePath: src }];
    await expect(collect(tarStream(entry(5)))).rejects.toThrow(/"f" changed while writing the layer \(expected 5 bytes, got more than 5\)/);
    await expect(collect(tarStream(entry(12)))).rejects.toThrow(/"f" changed while writing the layer \(expected 12 bytes, got 9\)/);
  });

  it('reads a small file with one read that also sees it did not grow, at every padding (512-byte multiples and batch ends)', async () => {
    // sizes whose padding is 0 need the byte past the content to land in room the batch has
    const sizes = [0, 1, 511, 512, 513, 1024, 64 * 1024, 128 * 1024 - 1, 128 * 1024];
    const entries: LayerEntry[] = [];
    const want = new Map<string, Buffer>();
    // enough files that the batch fills and is handed on mid-sequence, at every alignment
    for (let i = 0; i < 12; i++) {
      for (const size of sizes) {
        const name = `f${String(i).padStart(2, '0')}-${String(size).padStart(6, '0')}`;
        const bytes = Buffer.alloc(size, (i * 31 + size) % 251);
        const src = join(tmp.path, name);
        writeFileSync(src, bytes);
        want.set(name, bytes);
        entries.push({ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size, sourcePath: src });
      }
    }
    const out = join(tmp.path, 'one-read-out');
    sh('mkdir', ['-p', out]);
    sh('tar', ['-xf', '-', '-C', out], await collect(tarStream(entries)));
    for (const [name, bytes] of want) expect(readFileSync(join(out, name)).equals(bytes), name).toBe(true);
  });

  it('tells onContentDigest the sha256 of exactly the bytes it put in the layer, with the entry, small files and streamed ones', async () => {
    const small = join(tmp.path, 'digest-small');
    const big = join(tmp.path, 'digest-big');
    writeFileSync(small, 'small content');
    const bigBytes = Buffer.alloc(3 * 1024 * 1024 + 7, 0x5a);
    writeFileSync(big, bigBytes);
    const told = new Map<string, string>();
    // one callback for every entry: it learns which entry from its second argument
    const tell = (hex: string, e: LayerEntry): void => void told.set(e.path, hex);
    const entry = (path: string, src: string, size: number): LayerEntry => ({
      path, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size, sourcePath: src, onContentDigest: tell,
    });
    await collect(tarStream([
      entry('a-big', big, bigBytes.length),
      entry('b-small', small, 13),
      fileEntry('c-stream', 'from a stream', { onContentDigest: tell }),
      { path: 'd-empty', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 0, open: () => Readable.from([]), onContentDigest: tell },
    ]));
    const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
    expect(Object.fromEntries(told)).toEqual({ 'a-big': sha(bigBytes), 'b-small': sha('small content'), 'c-stream': sha('from a stream'), 'd-empty': sha('') });
  });
});

describe('tarStream with reuseChunks', () => {
  it('gives the same bytes to a consumer that copies each chunk before asking for the next, for files larger than one read', async () => {
    const a = join(tmp.path, 'reuse-a');
    const b = join(tmp.path, 'reuse-b');
    const aBytes = randomBytes(2 * 1024 * 1024 + 4321);
    const bBytes = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(a, aBytes);
    writeFileSync(b, bBytes);
    const entries = (): LayerEntry[] => [
      { path: 'a', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: aBytes.length, sourcePath: a },
      { path: 'b', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: bBytes.length, sourcePath: b },
      fileEntry('c', 'small, into the batch'),
    ];
    const copied: Buffer[] = [];
    const seen = new Set<ArrayBufferLike>();
    for await (const chunk of tarStream(entries(), { reuseChunks: true })) {
      copied.push(Buffer.from(chunk));
      seen.add(chunk.buffer);
    }
    const fresh = await collect(tarStream(entries()));
    expect(Buffer.concat(copied).equals(fresh)).toBe(true);
    // the same few buffers, not one per read: 5 MiB of content came through at most three
    expect(seen.size).toBeLessThanOrEqual(3);
  });

  it('is what writeLayer uses for gzip: the layer unpacks to the same bytes', async () => {
    const big = join(tmp.path, 'reuse-big');
    const bytes = randomBytes(5 * 1024 * 1024 + 99);
    writeFileSync(big, bytes);
    const w = await writeLayer([{ path: 'big', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: bytes.length, sourcePath: big }], store);
    const tar = gunzipSync(readFileSync(store.blobPath(w.digest)));
    expect(w.diffID).toBe(sha256(tar));
    const out = join(tmp.path, 'reuse-out');
    sh('mkdir', ['-p', out]);
    sh('tar', ['-xf', '-', '-C', out], tar);
    expect(readFileSync(join(out, 'big')).equals(bytes)).toBe(true);
  });
});

describe('writeLayer', () => {
  it('stores a gzip layer that gzip -t accepts and zcat turns back into the tar', async () => {
    const tar = await collect(tarStream(sampleEntries()));
    const w = await writeLayer(sampleEntries(), store);
    expect(w.mediaType).toBe(MediaType.OCI_LAYER_GZIP);
    expect(w.diffID).toBe(sha256(tar));
    expect(w.uncompressedSize).toBe(tar.length);
    const blob = readFileSync(store.blobPath(w.digest));
    expect(w.digest).toBe(sha256(blob));
    expect(w.size).toBe(blob.length);
    expect(blob.subarray(0, 10)).toEqual(Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255]));
    sh('gzip', ['-t', store.blobPath(w.digest)]);
    expect(sh('zcat', [store.blobPath(w.digest)])).toEqual(tar);
  });

  it('with a snapshot dir, unpacks the tar it writes there: the same tree an extraction of the blob gives', async () => {
    const big = join(tmp.path, 'big.bin');
    // larger than the tee's queue of chunks, so the writer waits for the extraction on the way
    writeFileSync(big, Buffer.alloc(6 << 20, 7));
    const entries = (): LayerEntry[] => [
      dirEntry('d', { mode: 0o1777 }),
      fileEntry(`d/${'a'.repeat(60)}`, 'x'),
      // every directory has its entry: one an extraction creates on its own gets the time of that moment, which two extractions need not share
      dirEntry('d/b'),
      dirEntry(`d/b/${'c'.repeat(200)}`),
      { ...fileEntry('d/big', ''), size: 6 << 20, sourcePath: big },
      { path: 'd/fifo', type: 'fifo', mode: 0o600, uid: 0, gid: 0, mtime: 1_700_000_000 },
      fileEntry('d/hello', 'hello world\n', { mode: 0o4755, uid: 3_000_000, gid: 3_000_001, xattrs: { 'security.capability': CAP_NET_BIND } }),
      { path: 'd/link', type: 'hardlink', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000, linkname: 'd/hello' },
      { path: 'd/null', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: 1_700_000_000, devmajor: 1, devminor: 3 },
      { path: 'd/sym', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 1_700_000_000, linkname: '../t' },
      fileEntry('z', 'late', { mtime: 1_900_000_000.75 }),
    ];
    for (const compression of ['gzip', 'uncompressed'] as const) {
      const snap = join(tmp.path, `snap-${compression}`);
      const w = await writeLayer(entries(), store, { compression }, snap);
      const fromBlob = join(tmp.path, `blob-${compression}`);
      const { diffID } = await extractLayer(createReadStream(store.blobPath(w.digest)), w.mediaType, fromBlob);
      expect(diffID).toBe(w.diffID);
      const tree = listTree(snap);
      expect(tree).toEqual(listTree(fromBlob));
      // what the entries say, not only what both extractions agree on
      expect(tree).toContainEqual(expect.stringMatching(/^d\/hello file 4755 3000000:3000001 1700000000 [0-9a-f]{64} cap=01000002/));
      expect(tree).toContainEqual(expect.stringMatching(/^d\/null char 666 0:0 1700000000 1:3/));
      expect(tree.find((l) => l.startsWith('z '))).toContain(' 1900000000 ');
      expect(lstatSync(join(snap, 'd/link')).ino).toBe(lstatSync(join(snap, 'd/hello')).ino);
    }
  });

  it('with a snapshot dir, a failing source fails the write once the extraction has stopped', async () => {
    const snap = join(tmp.path, 'snap-fail');
    const src = join(tmp.path, 'grows.txt');
    writeFileSync(src, 'x'.repeat(10));
    // the entry says 5 bytes: the tar writer refuses the file that grew
    const entries: LayerEntry[] = [dirEntry('a'), { ...fileEntry('a/f', ''), size: 5, sourcePath: src }];
    await expect(writeLayer(entries, store, {}, snap)).rejects.toThrow(/a\/f/);
    // nothing writes into the directory any more: its listing stays the same
    const before = listTree(snap);
    await new Promise((r) => setTimeout(r, 50));
    expect(listTree(snap)).toEqual(before);
  });

  it('uncompressed: digest equals diffID', async () => {
    const w = await writeLayer(sampleEntries(), store, { compression: 'uncompressed' });
    expect(w.mediaType).toBe(MediaType.OCI_LAYER);
    expect(w.digest).toBe(w.diffID);
    expect(w.size).toBe(w.uncompressedSize);
  });

  it('zstd round-trips through the zstd CLI', async () => {
    const tar = await collect(tarStream(sampleEntries()));
    const w = await writeLayer(sampleEntries(), store, { compression: 'zstd', compressionLevel: 5 });
    expect(w.mediaType).toBe(MediaType.OCI_LAYER_ZSTD);
    expect(w.diffID).toBe(sha256(tar));
    expect(sh('zstd', ['-dc', store.blobPath(w.digest)])).toEqual(tar);
  });

  it('is byte-identical across writes with sourceDateEpoch, clamping later mtimes only', async () => {
    const a = await writeLayer(sampleEntries(), store, { sourceDateEpoch: 1_800_000_000 });
    const b = await writeLayer(
      sampleEntries().map((e) => ({ ...e })),
      store,
      { sourceDateEpoch: 1_800_000_000 },
    );
    expect(b.digest).toBe(a.digest);
    expect(b.diffID).toBe(a.diffID);
    const listing = sh('tar', ['--full-time', '-tvzf', store.blobPath(a.digest)]).toString();
    expect(listing).toMatch(/2027-01-15 08:00:00 z\n/);
    expect(listing).toMatch(/2023-11-14 22:13:20 d\/hello/);
  });

  it('parallel gzip (multi-member) decompresses to the same tar, and equals block-by-block serial compression', async () => {
    // ~9 MiB: half random (stored blocks), half text (compressed blocks).
    const random = Buffer.alloc(5 * GZIP_BLOCK);
    const { randomBytes } = await import('node:crypto');
    randomBytes(random.length).copy(random);
    const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(100_000));
    const entries = (): LayerEntry[] => [fileEntry('random.bin', random), fileEntry('text.txt', text)];
    const tar = await collect(tarStream(entries()));
    const w = await writeLayer(entries(), store);
    const blob = readFileSync(store.blobPath(w.digest));
    // Compare digests: vitest's deep equality walks big buffers element by element.
    expect(sha256(gunzipSync(blob))).toBe(sha256(tar));
    expect(sha256(sh('zcat', [store.blobPath(w.digest)]))).toBe(sha256(tar));
    const serial: Buffer[] = [];
    for (let off = 0; off < tar.length; off += GZIP_BLOCK) serial.push(Buffer.from(compressBlock(zlib, tar.subarray(off, off + GZIP_BLOCK), 1)));
    expect(sha256(blob)).toBe(sha256(Buffer.concat(serial)));
    // random blocks are stored, not deflated: the blob is barely larger than the random part.
    expect(blob.length).toBeLessThan(random.length + 200_000);
    const level6 = await collect(gzipStream([tar], 6));
    expect(sha256(gunzipSync(level6))).toBe(sha256(tar));
    expect(sha256(level6)).not.toBe(sha256(blob));
  });
});
