import { closeSync, mkdirSync, openSync, readFileSync, readSync, renameSync, writeSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import { KilnError } from '../errors/index.js';
import type { HostFile } from './fs-view.js';
import { openListed } from '../layer/tar-writer.js';

/**
 * File sha256 by stat: (dev, ino, size, mtime, ctime) → hex. ctime is in the
 * key so a `touch -m` back to the old mtime, or a write within the same mtime
 * tick, still counts as a change. Persisted as one JSON file in the store's
 * cache dir: parsing 20,000 entries takes a few ms, far less than the
 * per-file reads it saves.
 */
export class HashCache {
  /**
   * path → where its record is: below `loaded.length`, the offset of its dev in `loaded`; from
   * there on, `loaded.length` + the number of the record in `added`.
   */
  private readonly index = new Map<string, number>();
  /** Records of the cache file, [path, dev, ino, size, mtimeMs, ctimeMs, sha256] laid flat, as in the file. */
  private loaded: unknown[] = [];
  /** Records learned since load, in slices (see LearnedSlice). */
  private readonly added: LearnedSlice[] = [];
  private addedCount = 0;
  private dirty = false;
  /** Files answered from the cache / read and hashed, since load. */
  hits = 0;
  misses = 0;

  private constructor(private readonly file: string | undefined) {}

  /** The cache file of one context directory under `dir` (the store's `cache/context-hashes`): one per directory, so a build loads only the tree it reads. */
  static fileFor(dir: string, contextDir: string): string {
    return join(dir, `${createHash('sha256').update(resolve(contextDir)).digest('hex').slice(0, 16)}.json`);
  }

  /** Loads the cache file (a missing or unreadable file is an empty cache). Pass no file for an in-memory cache. */
  static load(file?: string): HashCache {
    const cache = new HashCache(file);
    if (file === undefined) return cache;
    try {
      // One flat array, used as is: parses several times faster than an object per file.
      const doc = JSON.parse(readFileSync(file, 'utf8')) as { v?: number; files?: unknown[] };
      if (doc.v === 2 && Array.isArray(doc.files) && doc.files.length % 7 === 0) {
        cache.loaded = doc.files;
        for (let i = 0; i < cache.loaded.length; i += 7) cache.index.set(cache.loaded[i] as string, i + 1);
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
    const at = this.find(host);
    if (at !== undefined) {
      this.hits++;
      return at < this.loaded.length ? (this.loaded[at + 5] as string) : this.slice(at).sha256(this.slot(at));
    }
    this.misses++;
    const hex = hashFile(host.path, host.size, host);
    this.remember(host, hex);
    return hex;
  }

  /** Whether `host`'s hash is known for its current stat key (nothing is read). */
  has(host: HostFile): boolean {
    return this.find(host) !== undefined;
  }

  /** Where `host`'s record is, when its stat key matches. */
  private find(host: HostFile): number | undefined {
    const at = this.index.get(host.path);
    if (at === undefined) return undefined;
    if (at >= this.loaded.length) return this.slice(at).matches(this.slot(at), host) ? at : undefined;
    const r = this.loaded;
    return r[at] === host.dev && r[at + 1] === host.ino && r[at + 2] === host.size && r[at + 3] === host.mtimeMs && r[at + 4] === host.ctimeMs ? at : undefined;
  }

  private slice(at: number): LearnedSlice {
    return this.added[Math.floor((at - this.loaded.length) / LearnedSlice.RECORDS)]!;
  }

  private slot(at: number): number {
    return (at - this.loaded.length) % LearnedSlice.RECORDS;
  }

  /**
   * Records the sha256 of `host`'s bytes, learned by whoever read them (the layer writer of a step
   * that ran before its key was computed), under the stat key the file was listed with.
   */
  remember(host: HostFile, hex: string): void {
    const slot = this.addedCount % LearnedSlice.RECORDS;
    if (slot === 0) this.added.push(new LearnedSlice());
    this.added[this.added.length - 1]!.set(slot, host, hex);
    this.index.set(host.path, this.loaded.length + this.addedCount);
    this.addedCount++;
    this.dirty = true;
  }

  /** Writes the file atomically (temp + rename) when something changed; superseded records are dropped. */
  save(): void {
    if (!this.file || !this.dirty) return;
    // With no record superseded or forgotten, the records are the file as it is (in the index's order).
    const whole = this.loaded.length / 7 + this.addedCount === this.index.size;
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    writeRecords(tmp, whole ? this.inOrder() : recordsText(this.compacted()));
    renameSync(tmp, this.file);
    this.dirty = false;
  }

  /** Every record's text, the file's first and then each learned slice's, in the index's order. */
  private *inOrder(): Generator<string> {
    yield* recordsText(this.loaded);
    for (const slice of this.added) yield* slice.text();
  }

  private compacted(): unknown[] {
    const files: unknown[] = [];
    for (const [path, at] of this.index) {
      if (at < this.loaded.length) {
        const r = this.loaded;
        files.push(path, r[at], r[at + 1], r[at + 2], r[at + 3], r[at + 4], r[at + 5]);
      } else {
        this.slice(at).push(this.slot(at), files);
      }
    }
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

/**
 * Up to RECORDS records learned in one build, stored flat: a path, five numbers in a Float64Array
 * and the sha256 as 32 bytes. The file's layout (an array of path, numbers and hex per record) cost
 * some 170 bytes a file in V8's heap (each fractional time boxed on its own, 80 bytes of hex
 * string), and one array growing to 700,000 slots left its outgrown copies in the large-object
 * space; a slice is a fixed size, allocated once.
 */
class LearnedSlice {
  static readonly RECORDS = 2048;
  private readonly paths: string[] = [];
  /** dev, ino, size, mtimeMs, ctimeMs per record */
  private readonly stat = new Float64Array(LearnedSlice.RECORDS * 5);
  private readonly sums = Buffer.alloc(LearnedSlice.RECORDS * 32);

  set(slot: number, host: HostFile, hex: string): void {
    this.paths[slot] = host.path;
    const o = slot * 5;
    this.stat[o] = host.dev;
    this.stat[o + 1] = host.ino;
    this.stat[o + 2] = host.size;
    this.stat[o + 3] = host.mtimeMs;
    this.stat[o + 4] = host.ctimeMs;
    this.sums.write(hex, slot * 32, 32, 'hex');
  }

  matches(slot: number, host: HostFile): boolean {
    const o = slot * 5;
    const st = this.stat;
    return st[o] === host.dev && st[o + 1] === host.ino && st[o + 2] === host.size && st[o + 3] === host.mtimeMs && st[o + 4] === host.ctimeMs;
  }

  sha256(slot: number): string {
    return this.sums.toString('hex', slot * 32, slot * 32 + 32);
  }

  /** Appends the record in the file's layout. */
  push(slot: number, out: unknown[]): void {
    const o = slot * 5;
    const st = this.stat;
    out.push(this.paths[slot], st[o], st[o + 1], st[o + 2], st[o + 3], st[o + 4], this.sha256(slot));
  }

  /**
   * The slice's records as the file's text, SAVE_RECORDS at a time, made from its own arrays: no
   * array of the file's layout (an object and a boxed number per value) is built to be stringified.
   * A finite number's JSON is its String(), so the text is what JSON.stringify would write.
   */
  *text(): Generator<string> {
    const st = this.stat;
    for (let from = 0; from < this.paths.length; from += SAVE_RECORDS) {
      const records: string[] = [];
      for (let slot = from; slot < Math.min(from + SAVE_RECORDS, this.paths.length); slot++) {
        const o = slot * 5;
        records.push(`${JSON.stringify(this.paths[slot])},${st[o]},${st[o + 1]},${st[o + 2]},${st[o + 3]},${st[o + 4]},"${this.sha256(slot)}"`);
      }
      yield records.join(',');
    }
  }
}

/**
 * Records per piece of text written: some 30 KB of JSON. Every string of the save stays below
 * V8's large-object size (128 KiB), where a young-generation collection frees it; pieces of 2,048
 * records (200–300 KB, four copies each on their way to the file) sat in the large-object space
 * until a full collection, and the save of a 100,000-file context was the build's memory peak.
 */
const SAVE_RECORDS = 256;

/** Records of the file's layout (7 values each) as text, SAVE_RECORDS at a time. */
function* recordsText(files: readonly unknown[]): Generator<string> {
  for (let i = 0; i < files.length; i += 7 * SAVE_RECORDS) yield JSON.stringify(files.slice(i, i + 7 * SAVE_RECORDS)).slice(1, -1);
}

/** Writes `{"v":2,"files":[…]}` from the records' text, piece by piece (never the whole document in memory). */
function writeRecords(file: string, pieces: Iterable<string>): void {
  // explicit: the umask must not make a store file writable by others (0644, as the store's own files)
  const fd = openSync(file, 'w', 0o644);
  try {
    writeSync(fd, '{"v":2,"files":[');
    let first = true;
    for (const piece of pieces) {
      // each piece holds at least one record
      if (!first) writeSync(fd, ',');
      writeSync(fd, piece);
      first = false;
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
 * With `inode` (the file as it was listed), the file opened must be that inode: a file, or a
 * directory above it, swapped since is refused rather than hashed — its hash would be remembered
 * under the listed file's stat and reused by later builds.
 */
export function hashFile(path: string, expected?: number, inode?: { dev: number; ino: number }): string {
  const h = createHash('sha256');
  // opened as the layer writer opens a listed source: a symlink swapped in is refused, a FIFO cannot block
  const fd = openListed(path, inode, () => new KilnError('CONTEXT', `file "${path}" was replaced while the build read it; nothing was read from it`));
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
