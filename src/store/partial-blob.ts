import { createHash, type Hash } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, open, readdir, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../errors/index.js';
import { digestHex, digestOfHash, type Digest } from '../image/digest.js';
import { fsyncDir } from './atomic-file.js';
import { tryFlock, waitFlock } from './flock.js';
import type { PartialDownload } from './types.js';
import { writeVerifiedRecord } from './verified-record.js';
import { WriteBack } from './write-back.js';

/** Where partial downloads live and where a finished one is published. */
export interface PartialPlaces {
  /** tmp/partial/ */
  partialDir: string;
  /** blobs/sha256/ */
  blobsDir: string;
  /** Where the published blob's verified record goes (verified-record.ts); none when absent. */
  verifiedFile?: (digest: Digest) => string;
}

const READ_PIECE = 1024 * 1024;

/**
 * A resumable download of one blob, `tmp/partial/<hex>`, held with an
 * exclusive flock from open to commit, discard or release. Every writer takes
 * the lock, so exactly one process writes a partial file at a time, and the
 * hash it keeps covers exactly the bytes in the file: the prefix a killed
 * earlier download left is re-read from the locked descriptor, the rest is
 * hashed as it is written. Commit checks that hash and the size before the
 * rename into blobs/, and closes the descriptor only after the rename, so a
 * process that waited on the old lock finds the path gone (or a new inode)
 * and never writes into the published blob.
 */
export class PartialBlob implements PartialDownload {
  private hash: Hash;
  private written: number;
  private fh: FileHandle | undefined;
  private writeBack: WriteBack;

  private constructor(
    private readonly path: string,
    private readonly places: PartialPlaces,
    private readonly expect: { digest: Digest; size: number },
    fh: FileHandle,
    hash: Hash,
    written: number,
  ) {
    this.fh = fh;
    this.hash = hash;
    this.written = written;
    this.writeBack = new WriteBack(fh);
  }

  /**
   * Takes the partial file for `expect.digest`, waiting while another
   * process (or another pull in this one) downloads it. Undefined when the
   * blob is published by then: nothing left to do.
   */
  static async open(places: PartialPlaces, expect: { digest: Digest; size: number }, opts: { signal?: AbortSignal } = {}): Promise<PartialBlob | undefined> {
    const hex = digestHex(expect.digest);
    const path = join(places.partialDir, hex);
    const blobPath = join(places.blobsDir, hex);
    for (;;) {
      if ((await sizeOf(blobPath)) === expect.size) return undefined;
      // O_NOFOLLOW: the partial directory holds plain files only
      const fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
      try {
        await waitFlock(fh.fd, 'exclusive', { what: `download of ${expect.digest}`, ...(opts.signal ? { signal: opts.signal } : {}) });
        const mine = await fh.stat();
        // the holder we waited for published (renamed) or discarded the file: start again from the path
        if (!sameFile(mine, await lstat(path).catch(() => undefined))) {
          await fh.close();
          continue;
        }
        if ((await sizeOf(blobPath)) === expect.size) {
          await rm(path, { force: true });
          await fh.close();
          return undefined;
        }
        let size = mine.size;
        if (size > expect.size) {
          await fh.truncate(0);
          size = 0;
        }
        const hash = createHash('sha256');
        const buf = Buffer.allocUnsafe(Math.min(READ_PIECE, Math.max(size, 1)));
        let pos = 0;
        while (pos < size) {
          const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
          if (bytesRead === 0) break;
          hash.update(buf.subarray(0, bytesRead));
          pos += bytesRead;
        }
        return new PartialBlob(path, places, expect, fh, hash, pos);
      } catch (e) {
        await fh.close().catch(() => undefined);
        throw e;
      }
    }
  }

  /** Bytes in the file (and in the hash). */
  get offset(): number {
    return this.written;
  }

  async append(chunk: Uint8Array): Promise<void> {
    const fh = this.handle();
    if (this.written + chunk.length > this.expect.size) {
      throw new KilnError('SIZE_MISMATCH', `blob ${this.expect.digest} size mismatch: expected ${this.expect.size} bytes, got more`);
    }
    let done = 0;
    while (done < chunk.length) {
      const { bytesWritten } = await fh.write(chunk, done, chunk.length - done, this.written + done);
      done += bytesWritten;
    }
    this.hash.update(chunk);
    this.written += chunk.length;
    this.writeBack.wrote(this.written);
  }

  /** Empties the file to download from byte 0 (a prefix the registry refuses or that proved wrong). */
  async restart(): Promise<void> {
    const fh = this.handle();
    await this.writeBack.settle();
    this.writeBack = new WriteBack(fh);
    await fh.truncate(0);
    this.hash = createHash('sha256');
    this.written = 0;
  }

  /**
   * Publishes the file when its bytes hash to the digest and have the size
   * expected; otherwise throws and keeps the file and the lock (restart or
   * discard next).
   */
  async commit(): Promise<{ digest: Digest; size: number }> {
    const fh = this.handle();
    const { digest, size } = this.expect;
    if (this.written !== size) throw new KilnError('SIZE_MISMATCH', `blob ${digest} size mismatch: expected ${size} bytes, got ${this.written}`);
    const got = digestOfHash(this.hash.copy());
    if (got !== digest) throw new KilnError('DIGEST_MISMATCH', `blob digest mismatch: expected ${digest}, got ${got}`);
    await this.writeBack.settle();
    await fh.sync();
    const published = join(this.places.blobsDir, digestHex(digest));
    await rename(this.path, published);
    await fsyncDir(this.places.blobsDir);
    // every byte of the file was hashed (a resumed download re-hashes what it kept): a later 'once' read may trust it
    if (this.places.verifiedFile) writeVerifiedRecord(this.places.verifiedFile(digest), published);
    await this.close();
    return { digest, size };
  }

  /** Deletes the file and lets go of it. */
  async discard(): Promise<void> {
    if (!this.fh) return;
    await rm(this.path, { force: true });
    await this.close();
  }

  /** Lets go of the file, keeping its bytes for a later download to resume. */
  async release(): Promise<void> {
    await this.close();
  }

  private handle(): FileHandle {
    if (!this.fh) throw new KilnError('INTERNAL', `partial download of ${this.expect.digest} is already closed`);
    return this.fh;
  }

  private async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    // an early flush may still hold the descriptor; its failure no longer matters once the file is let go
    await this.writeBack.settle().catch(() => undefined);
    // closing drops the flock
    await fh?.close();
  }
}

/**
 * Deletes partial downloads nobody holds (a live download keeps its flock),
 * those older than `olderThanMs` only when given. Returns what went (or would
 * go, with `dryRun`) and its size.
 */
export async function removeIdlePartials(partialDir: string, opts: { olderThanMs?: number; now?: number; dryRun?: boolean } = {}): Promise<Array<{ name: string; bytes: number }>> {
  const now = opts.now ?? Date.now();
  const out: Array<{ name: string; bytes: number }> = [];
  for (const name of await readdir(partialDir).catch(() => [] as string[])) {
    const p = join(partialDir, name);
    const st = await lstat(p).catch(() => undefined);
    if (!st) continue;
    if (opts.olderThanMs !== undefined && now - st.mtimeMs <= opts.olderThanMs) continue;
    if (!st.isFile()) {
      // not something kiln writes there
      if (!opts.dryRun) await rm(p, { recursive: true, force: true });
      out.push({ name, bytes: 0 });
      continue;
    }
    const fh = await open(p, constants.O_RDWR | constants.O_NOFOLLOW).catch(() => undefined);
    if (!fh) continue;
    try {
      if (!tryFlock(fh.fd, 'exclusive')) continue;
      if (!sameFile(await fh.stat(), await lstat(p).catch(() => undefined))) continue;
      if (!opts.dryRun) await rm(p, { force: true });
      out.push({ name, bytes: st.size });
    } finally {
      await fh.close();
    }
  }
  return out;
}

function sameFile(a: Stats, b: Stats | undefined): boolean {
  return b !== undefined && a.ino === b.ino && a.dev === b.dev;
}

async function sizeOf(path: string): Promise<number | undefined> {
  return (await stat(path).catch(() => undefined))?.size;
}
