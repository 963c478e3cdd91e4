import { createHash } from 'node:crypto';
import { createReadStream, openSync, readFileSync, statSync } from 'node:fs';
import { open, readFile, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { KilnError } from '../errors/index.js';
import type { BlobStore, BlobVerify, BlobWriteExpectation } from '../image/blob-store.js';
import { canonicalBytes } from '../image/canonical-json.js';
import { digestOfHash, isDigest, sha256, type Digest } from '../image/digest.js';
import type { Shape } from '../image/document-shapes.js';
import type { Descriptor } from '../image/types.js';
import { fsyncDir, tempName } from './atomic-file.js';
import { decodeStoreJSON } from './json-file.js';
import type { StoreLayout } from './layout.js';
import { PartialBlob } from './partial-blob.js';
import { matchesVerifiedRecord, removeVerifiedRecord, writeVerifiedRecord } from './verified-record.js';
import { WriteBack } from './write-back.js';

/** Documents up to this size are compared with a stored blob of the same digest before being written again. */
const SAME_BYTES_CHECK_LIMIT = 4 * 1024 * 1024;

/** Bytes of a blob being written that may wait for the disk while the source goes on. */
const WRITE_BEHIND = 8 * 1024 * 1024;

/** Writes all of `b` at `position` (a positional write may be short). */
async function writeAll(fh: FileHandle, b: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < b.length) {
    const { bytesWritten } = await fh.write(b, off, b.length - off, position + off);
    if (bytesWritten <= 0) throw new KilnError('INTERNAL', `short write of a blob at offset ${position + off}`);
    off += bytesWritten;
  }
}

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT';
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new KilnError('INTERNAL', 'blob data must be bytes');
}

/**
 * The content-addressed part of the store: `blobs/sha256/<hex>`, each
 * published by rename after its bytes were hashed and fsynced, so a blob file
 * either is complete and named by its digest or does not exist. Reads verify
 * on request (streams) or always (whole documents).
 */
export class BlobFiles implements BlobStore {
  constructor(private readonly layout: StoreLayout) {}

  blobPath(digest: Digest): string {
    return this.layout.blob(digest);
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return (await this.blobSize(digest)) !== undefined;
  }

  /**
   * Synchronous on purpose: a stat of a local file costs microseconds, where a trip through the
   * thread pool costs an event-loop turn, and a cached build asks this of every layer of every
   * step in turn (about 40 times for a 19-step rebuild).
   */
  async blobSize(digest: Digest): Promise<number | undefined> {
    const st = statSync(this.blobPath(digest), { throwIfNoEntry: false });
    return st?.size;
  }

  async writeBlob(data: Readable | AsyncIterable<Uint8Array>, expect: BlobWriteExpectation = {}): Promise<{ digest: Digest; size: number }> {
    const tmp = tempName(this.layout.tmp, 'blob');
    const fh = await open(tmp, 'wx', 0o644);
    let closed = false;
    let published = false;
    try {
      const hash = createHash('sha256');
      let size = 0;
      // Write-behind: each chunk goes to the file at its offset while the source already
      // produces the next (a layer's tar → compress → hash chain only advances when pulled),
      // with at most WRITE_BEHIND bytes queued so memory stays flat.
      const pending = new Set<Promise<void>>();
      let queued = 0;
      let failure: unknown;
      const writeBack = new WriteBack(fh);
      try {
        for await (const chunk of data as AsyncIterable<unknown>) {
          const b = toBuffer(chunk);
          const at = size;
          size += b.length;
          if (expect.size !== undefined && size > expect.size) throw sizeMismatch(expect, size, '>');
          hash.update(b);
          queued += b.length;
          const w: Promise<void> = writeAll(fh, b, at).then(
            () => {
              queued -= b.length;
              // every byte produced is queued or written: what is not queued is in the file
              writeBack.wrote(size - queued);
              pending.delete(w);
            },
            (e: unknown) => {
              failure ??= e;
              pending.delete(w);
            },
          );
          pending.add(w);
          while (queued > WRITE_BEHIND && failure === undefined) await Promise.race(pending);
          if (failure !== undefined) break;
        }
      } finally {
        // no write or early flush may still be running when the file is closed or removed below
        await Promise.all(pending);
        await writeBack.settle().catch((e: unknown) => {
          failure ??= e;
        });
      }
      if (failure !== undefined) throw failure;
      await fh.sync();
      await fh.close();
      closed = true;
      const digest = digestOfHash(hash);
      if (expect.digest !== undefined && digest !== expect.digest) {
        throw new KilnError('DIGEST_MISMATCH', `blob digest mismatch: expected ${expect.digest}, got ${digest}`);
      }
      if (expect.size !== undefined && size !== expect.size) throw sizeMismatch(expect, size, '');
      // Renaming over an existing blob is harmless (same bytes) and repairs a corrupted one.
      await rename(tmp, this.blobPath(digest));
      published = true;
      await fsyncDir(this.layout.blobs);
      // the bytes just hashed are this file: a later read with `verify: 'once'` need not hash them again
      writeVerifiedRecord(this.layout.verifiedFile(digest), this.blobPath(digest));
      return { digest, size };
    } finally {
      if (!closed) await fh.close().catch(() => undefined);
      if (!published) await rm(tmp, { force: true });
    }
  }

  async putBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }> {
    // A rebuild stores the same config and manifest again: when the blob already holds
    // exactly these bytes there is nothing to write (and no fsync). Comparing the bytes,
    // not only the name, keeps the repair a rewrite gives a damaged blob.
    if (bytes.length <= SAME_BYTES_CHECK_LIMIT) {
      const digest = sha256(bytes);
      if (await this.holds(digest, bytes)) return { digest, size: bytes.length };
    }
    return this.writeBlob(Readable.from([Buffer.from(bytes)]));
  }

  /** Whether the blob `digest` is exactly `bytes` (its size is looked at before its content). */
  private async holds(digest: Digest, bytes: Uint8Array): Promise<boolean> {
    if ((await this.blobSize(digest)) !== bytes.length) return false;
    try {
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(await readFile(this.blobPath(digest)));
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** Stores a JSON document in canonical encoding and returns its descriptor. */
  async putJSON(value: unknown, mediaType: string): Promise<Descriptor> {
    const { digest, size } = await this.putBytes(canonicalBytes(value));
    return { mediaType, digest, size };
  }

  /**
   * Streams a blob. With `verify`, the stream fails at its end with
   * DIGEST_MISMATCH when the bytes on disk do not hash to `digest`; with
   * `verify: 'once'` the hash is skipped when the file is still the one this
   * store hashed as it wrote it (verified-record.ts), and taken otherwise.
   */
  openBlob(digest: Digest, opts: { verify?: BlobVerify; start?: number } = {}): Readable {
    if (opts.verify && opts.start) throw new KilnError('INTERNAL', 'openBlob: verify needs the whole blob (start must be 0)');
    let fd: number | undefined;
    let verify = opts.verify !== undefined && opts.verify !== false;
    if (opts.verify === 'once') {
      try {
        fd = openSync(this.blobPath(digest), 'r');
      } catch {
        // the stream below reports it
      }
      // the record is checked against the very file this stream reads
      if (fd !== undefined && matchesVerifiedRecord(this.layout.verifiedFile(digest), fd)) verify = false;
    }
    const src = createReadStream(this.blobPath(digest), fd !== undefined ? { fd } : opts.start ? { start: opts.start } : {});
    const hash = verify ? createHash('sha256') : undefined;
    const out = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash?.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        if (!hash) return cb();
        const got = digestOfHash(hash);
        cb(got === digest ? null : new KilnError('DIGEST_MISMATCH', `blob ${digest} is corrupted: its content hashes to ${got}`));
      },
    });
    src.on('error', (e) => out.destroy(isNotFound(e) ? new KilnError('NOT_FOUND', `blob ${digest} not found in store`) : e));
    out.on('close', () => src.destroy());
    return src.pipe(out);
  }

  /**
   * Whole blob in memory, always verified (meant for manifests and configs). Read synchronously:
   * these are a few KiB, and a read through the thread pool (open, stat, read, close) costs four
   * event-loop turns, which a cached build paid for every document it looked at.
   */
  async readBlob(digest: Digest): Promise<Buffer> {
    let b: Buffer;
    try {
      b = readFileSync(this.blobPath(digest));
    } catch (e) {
      if (isNotFound(e)) throw new KilnError('NOT_FOUND', `blob ${digest} not found in store`);
      throw e;
    }
    const got = sha256(b);
    if (got !== digest) throw new KilnError('DIGEST_MISMATCH', `blob ${digest} is corrupted: its content hashes to ${got}`);
    return b;
  }

  /** A verified JSON blob checked against `shape` (StoreCorruptError naming the blob otherwise). */
  async readJSON<T>(digest: Digest, shape: Shape<T>): Promise<T> {
    return decodeStoreJSON((await this.readBlob(digest)).toString('utf8'), `blob ${digest}`, shape);
  }

  /** Every published blob digest. */
  async listBlobs(): Promise<Digest[]> {
    const names = await readdir(this.layout.blobs);
    return names.map((n) => `sha256:${n}`).filter(isDigest);
  }

  /** Removes a blob file (GC only; callers hold the store exclusively and drop its metadata too). */
  async deleteBlob(digest: Digest): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
    removeVerifiedRecord(this.layout.verifiedFile(digest));
  }

  /**
   * The resumable download of `expect.digest` (tmp/partial/<hex>), held
   * exclusively until committed, discarded or released; waits while another
   * process downloads the same blob. Undefined when the blob is already
   * published. See PartialBlob.
   */
  openPartialBlob(expect: { digest: Digest; size: number }, opts: { signal?: AbortSignal } = {}): Promise<PartialBlob | undefined> {
    return PartialBlob.open({ partialDir: this.layout.partial, blobsDir: this.layout.blobs, verifiedFile: this.layout.verifiedFile }, expect, opts);
  }
}

function sizeMismatch(expect: BlobWriteExpectation, got: number, more: string): KilnError {
  const what = expect.digest ? `blob ${expect.digest}` : 'blob';
  return new KilnError('SIZE_MISMATCH', `${what} size mismatch: expected ${expect.size} bytes, got ${more}${got}`);
}
