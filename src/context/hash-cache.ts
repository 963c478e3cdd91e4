import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import type { HostFile } from './fs-view.js';
import { SOURCE_FLAGS } from '../layer/tar-writer.js';

/**
 * File sha256 by stat: (dev, ino, size, mtime, ctime) → hex. ctime is in the
 * key so a `touch -m` back to the old mtime, or a write within the same mtime
 * tick, still counts as a change. Persisted as one JSON file in the store's
 * cache dir: parsing 20,000 entries takes a few ms, far less than the
 * per-file reads it saves.
 */
export class HashCache {
  /** path → offset of its record in `recs`: [dev, ino, size, mtimeMs, ctimeMs, sha256] laid flat, as in the file. */
  private readonly index = new Map<string, number>();
  private recs: unknown[] = [];
  private dirty = false;
  /** Files answered from the cache / read and hashed, since load. */
  hits = 0;
  misses = 0;

  private constructor(private readonly file: string | undefined) {}

  /** Loads the cache file (a missing or unreadable file is an empty cache). Pass no file for an in-memory cache. */
  /** The cache file of one context directory under `dir` (the store's `cache/context-hashes`): one per directory, so a build loads only the tree it reads. */
  static fileFor(dir: string, contextDir: string): string {
    return join(dir, `${createHash('sha256').update(resolve(contextDir)).digest('hex').slice(0, 16)}.json`);
  }

  static load(file?: string): HashCache {
    const cache = new HashCache(file);
    if (file === undefined) return cache;
    try {
      // One flat array, used as is: parses several times faster than an object per file.
      const doc = JSON.parse(readFileSync(file, 'utf8')) as { v?: number; files?: unknown[] };
      if (doc.v === 2 && Array.isArray(doc.files) && doc.files.length % 7 === 0) {
        cache.recs = doc.files;
        for (let i = 0; i < cache.recs.length; i += 7) cache.index.set(cache.recs[i] as string, i + 1);
      }
    } catch {
      // A cache is only an optimisation: a corrupt or absent file means re-hashing.
    }
    return cache;
  }

  get size(): number {
    return this.index.size;
  }

  /** sha256 hex of the file's bytes, from the cache when its stat key is unchanged. */
  fileSha256(host: HostFile): string {
    if (this.has(host)) {
      this.hits++;
      return this.recs[this.index.get(host.path)! + 5] as string;
    }
    this.misses++;
    const hex = hashFile(host.path, host.size);
    this.remember(host, hex);
    return hex;
  }

  /** Whether `host`'s hash is known for its current stat key (nothing is read). */
  has(host: HostFile): boolean {
    const i = this.index.get(host.path);
    const r = this.recs;
    return i !== undefined && r[i] === host.dev && r[i + 1] === host.ino && r[i + 2] === host.size && r[i + 3] === host.mtimeMs && r[i + 4] === host.ctimeMs;
  }

  /**
   * Records the sha256 of `host`'s bytes, learned by whoever read them (the layer writer of a step
   * that ran before its key was computed), under the stat key the file was listed with.
   */
  remember(host: HostFile, hex: string): void {
    this.index.set(host.path, this.recs.length + 1);
    this.recs.push(host.path, host.dev, host.ino, host.size, host.mtimeMs, host.ctimeMs, hex);
    this.dirty = true;
  }

  /** Writes the file atomically (temp + rename) when something changed; superseded records are dropped. */
  save(): void {
    if (!this.file || !this.dirty) return;
    // With no record superseded or forgotten, the records are the file as it is (in the index's order).
    const files = this.recs.length === this.index.size * 7 ? this.recs : this.compacted();
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeRecords(tmp, files);
    renameSync(tmp, this.file);
    this.dirty = false;
  }

  private compacted(): unknown[] {
    const files: unknown[] = [];
    const r = this.recs;
    for (const [path, i] of this.index) files.push(path, r[i], r[i + 1], r[i + 2], r[i + 3], r[i + 4], r[i + 5]);
    return files;
  }

  /** Forgets files below `prefix` (staged downloads and unpacked archives), so they never reach the cache file. */
  forget(prefix: string): void {
    for (const k of this.index.keys()) {
      if (k.startsWith(prefix)) {
        this.index.delete(k);
        this.dirty = true;
      }
    }
  }
}

/** Records serialised per write: a few hundred KiB of JSON at a time. */
const SAVE_CHUNK = 7 * 2048;

/**
 * Writes `{"v":2,"files":[…]}` a slice of records at a time. One `JSON.stringify` of the whole
 * array held the document twice at the end of a build (the string and its UTF-8 copy, about
 * 15 MB each at 100,000 files), which was the build's peak memory.
 */
function writeRecords(file: string, files: readonly unknown[]): void {
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, '{"v":2,"files":[');
    for (let i = 0; i < files.length; i += SAVE_CHUNK) {
      const part = JSON.stringify(files.slice(i, i + SAVE_CHUNK));
      // each slice is non-empty, so its brackets enclose at least one record
      writeSync(fd, (i === 0 ? '' : ',') + part.slice(1, -1));
    }
    writeSync(fd, ']}');
  } finally {
    closeSync(fd);
  }
}

const buf = Buffer.allocUnsafe(1 << 20);

/**
 * sha256 hex of a file's bytes, whatever its length. With `expected` (the size it was listed
 * with), a read that comes back short once that many bytes are in is the end of the file, so a
 * small file costs one read instead of two. A short read before that (a file that shrank, or a
 * file system whose reads may stop early) goes on to a read of 0, as without `expected`.
 */
export function hashFile(path: string, expected?: number): string {
  const h = createHash('sha256');
  // opened as the layer writer opens a listed source: a symlink swapped in is refused, a FIFO cannot block
  const fd = openSync(path, SOURCE_FLAGS);
  try {
    let total = 0;
    for (;;) {
      const want = expected !== undefined && total <= expected ? Math.min(buf.length, expected + 1 - total) : buf.length;
      const n = readSync(fd, buf, 0, want, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      total += n;
      if (n < want && expected !== undefined && total >= expected) break;
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
