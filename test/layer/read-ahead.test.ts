import { createHash, hash } from 'node:crypto';
import * as fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readAhead } from '../../src/layer/read-ahead.js';
import { readSources, SMALL_FILE, SOURCE_FLAGS } from '../../src/layer/source-batch.js';
import { tarStream } from '../../src/layer/tar-writer.js';
import type { LayerEntry } from '../../src/layer/types.js';
import { collect, dirEntry, sh, tempDir } from './helpers.js';

const tmp = tempDir('kiln-read-ahead-');
afterAll(() => tmp.cleanup());

/** Fewer small files than a layer's default before reading ahead, so these trees stay small. */
const AFTER = 256;

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** `n` small files under a new directory, sizes cycling through batch and padding edges; entries as a COPY lists them. */
function tree(name: string, n: number, tell?: (hex: string, e: LayerEntry) => void): { entries: LayerEntry[]; want: Map<string, Buffer> } {
  const dir = join(tmp.path, name);
  fs.mkdirSync(dir);
  const sizes = [1, 511, 512, 513, 4096, 64 * 1024, SMALL_FILE - 1, SMALL_FILE, SMALL_FILE + 1, 0, 37];
  const entries: LayerEntry[] = [dirEntry('d')];
  const want = new Map<string, Buffer>();
  for (let i = 0; i < n; i++) {
    const file = `f${String(i).padStart(5, '0')}`;
    const bytes = Buffer.alloc(sizes[i % sizes.length]!, i % 251);
    const src = join(dir, file);
    fs.writeFileSync(src, bytes);
    const st = fs.statSync(src);
    want.set(`d/${file}`, bytes);
    entries.push({ path: `d/${file}`, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: bytes.length, sourcePath: src, sourceInode: { dev: st.dev, ino: st.ino }, onContentDigest: tell });
  }
  return { entries, want };
}

describe('reading a layer\'s small source files ahead, on a worker', () => {
  it('hands the writer each file\'s own bytes and sha256 once the layer has shown enough small files', async () => {
    const { entries, want } = tree('ahead', 1200);
    // the sha256 is asked for only by entries that want it
    entries.forEach((e, i) => {
      if (i % 2 === 0 && e.type === 'file') e.onContentDigest = () => {};
    });
    let fromWorker = 0;
    let first: number | undefined;
    let i = 0;
    for await (const a of readAhead(entries, AFTER)) {
      const e = a.entry;
      expect(e).toBe(entries[i]); // in order, every entry once
      if (a.batch !== undefined && a.index >= 0) {
        first ??= i;
        const size = e.size!;
        expect(size > 0 && size <= SMALL_FILE, e.path).toBe(true);
        expect(a.batch.ok[a.index], e.path).toBe(1);
        const at = a.batch.offsets[a.index]!;
        const bytes = a.batch.data.subarray(at, at + size);
        expect(bytes.equals(want.get(e.path)!), e.path).toBe(true);
        expect(a.batch.hex.slice(64 * a.index, 64 * a.index + 64), e.path).toBe(e.onContentDigest ? sha(bytes) : '0'.repeat(64));
        fromWorker++;
      }
      i++;
    }
    expect(i).toBe(entries.length);
    // the first AFTER small files are the writer's own; of the rest, every small one with content came in a batch
    // (read on the worker, or on this thread while the worker was still starting)
    expect(first).toBeGreaterThan(AFTER);
    const small = entries.filter((e, k) => k >= first! && e.type === 'file' && e.size! > 0 && e.size! <= SMALL_FILE).length;
    expect(fromWorker).toBe(small);
  });

  it('writes the same tar, byte for byte, as the writer reading every file itself, and tells each file\'s digest', async () => {
    const told = new Map<string, string>();
    const tell = (hex: string, e: LayerEntry): void => void told.set(e.path, hex);
    const { entries, want } = tree('same', 900, tell);
    const tar = await collect(tarStream(entries, { readAheadAfter: AFTER }));
    const out = join(tmp.path, 'same-out');
    fs.mkdirSync(out);
    sh('tar', ['-xf', '-', '-C', out], tar);
    for (const [path, bytes] of want) {
      expect(fs.readFileSync(join(out, path)).equals(bytes), path).toBe(true);
      if (bytes.length > 0) expect(told.get(path), path).toBe(sha(bytes));
    }
    // the reference: each entry written as a layer of its own (no layer of one entry is read ahead), the members laid end to end
    const members: Buffer[] = [];
    for (const e of entries) {
      const alone = await collect(tarStream([{ ...e, onContentDigest: undefined }]));
      members.push(alone.subarray(0, alone.length - 1024));
    }
    expect(tar.equals(Buffer.concat([...members, Buffer.alloc(1024)]))).toBe(true);
  });

  it('leaves a file that changed since it was listed to the writer, which fails with its own error', async () => {
    for (const [change, message] of [
      [(p: string) => fs.writeFileSync(p, Buffer.alloc(fs.statSync(p).size + 3)), /changed while writing the layer \(expected \d+ bytes, got more than \d+\)/],
      [(p: string) => fs.truncateSync(p, 0), /changed while writing the layer \(expected \d+ bytes, got 0\)/],
      // made before the old one goes, so it cannot be given the freed inode number
      [(p: string) => { fs.writeFileSync(`${p}.new`, 'x'); fs.renameSync(`${p}.new`, p); }, /was replaced by another file/],
      [(p: string) => { fs.rmSync(p); fs.symlinkSync('/etc/hostname', p); }, /was replaced by a symlink/],
      [(p: string) => { fs.rmSync(p); execFileSync('mkfifo', [p]); }, /was replaced by something that is not a regular file/],
    ] as const) {
      const { entries } = tree(`changed-${Math.random().toString(36).slice(2)}`, 700);
      const victim = entries[600]!;
      change(victim.sourcePath!);
      // the worker reports it could not read it as listed
      for await (const a of readAhead(entries, AFTER)) {
        if (a.entry === victim) {
          expect(a.batch).toBeDefined();
          expect(a.batch!.ok[a.index]).toBe(0);
        }
      }
      await expect(collect(tarStream(entries, { readAheadAfter: AFTER }))).rejects.toThrow(message);
    }
  });
});

describe('reading ahead, stopped early', () => {
  it('closes the entries\' source when the writer stops in the middle, as for-await would', async () => {
    const { entries } = tree('early', 700);
    let closed = false;
    function* source(): Generator<LayerEntry> {
      try {
        yield* entries;
      } finally {
        closed = true;
      }
    }
    let n = 0;
    for await (const a of readAhead(source(), AFTER)) {
      expect(a.entry).toBe(entries[n]);
      if (++n === 500) break;
    }
    expect(closed).toBe(true);
  });
});

describe('readSources (the worker\'s batch read)', () => {
  it('reads into the buffer it is given when that has room, else into a new one of at least the room asked', () => {
    const { entries } = tree('direct', 10);
    const files = entries.filter((e) => e.type === 'file' && e.size! > 0 && e.size! <= SMALL_FILE);
    const request = (f: LayerEntry[], ino = (e: LayerEntry) => e.sourceInode!.ino) => ({
      paths: f.map((e) => `${e.sourcePath!}\0`).join(''),
      meta: Float64Array.from(f.flatMap((e) => [e.size!, e.sourceInode!.dev, ino(e)])),
      hash: Uint8Array.from(f.map(() => 1)),
    });
    const total = files.reduce((n, e) => n + e.size!, 0);
    const mine = new ArrayBuffer(total + 1);
    const r = readSources(fs, hash, SOURCE_FLAGS, request(files), mine, 0);
    expect(r.data).toBe(mine);
    expect([...r.ok]).toEqual(files.map(() => 1));
    let at = 0;
    files.forEach((e, i) => {
      const bytes = fs.readFileSync(e.sourcePath!);
      expect(Buffer.from(r.data, at, e.size).equals(bytes)).toBe(true);
      expect(r.hex.slice(64 * i, 64 * i + 64)).toBe(sha(bytes));
      at += e.size!;
    });
    const small = readSources(fs, hash, SOURCE_FLAGS, request(files), new ArrayBuffer(total), 4 << 20);
    expect(small.data.byteLength).toBe(4 << 20);
    // another inode than listed: not read, not hashed
    const other = readSources(fs, hash, SOURCE_FLAGS, request(files.slice(0, 1), (e) => e.sourceInode!.ino + 1), undefined, 0);
    expect([...other.ok]).toEqual([0]);
    expect(other.hex).toBe('0'.repeat(64));
  });
});
