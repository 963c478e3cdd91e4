import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';

/**
 * The content-addressed blob port: what the registry client, the layer
 * writer and the RUN step need from a store. It lives beside the image model
 * (not in store/) so those consumers import it without climbing: store/
 * implements it, and store/ may import layer/, never the other way round.
 */

/**
 * How a blob read checks its bytes: `false` not at all; `true` hashes them
 * (fsck: always); `'once'` hashes them unless the file is still the one the
 * store hashed when it wrote it (the archive outputs and re-compression; see
 * store/verified-record.ts).
 */
export type BlobVerify = boolean | 'once';

export interface BlobWriteExpectation {
  digest?: Digest;
  size?: number;
}

/**
 * Blobs stream through sha256 into a temporary file and are renamed into
 * place after fsync; a mismatching blob is never published.
 */
export interface BlobStore {
  hasBlob(digest: Digest): Promise<boolean>;
  /** Size in bytes, or undefined when absent. */
  blobSize(digest: Digest): Promise<number | undefined>;
  /**
   * Streams `data` into the store; verifies `expect` when given. Returns the digest and size actually written.
   * A chunk may still be waiting for the disk after the next one is pulled: a source must not reuse or change
   * a chunk's bytes once it has yielded them.
   */
  writeBlob(data: Readable | AsyncIterable<Uint8Array>, expect?: BlobWriteExpectation): Promise<{ digest: Digest; size: number }>;
  /** Convenience for small JSON/bytes documents. */
  putBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }>;
  openBlob(digest: Digest, opts?: { verify?: BlobVerify; start?: number }): Readable;
  readBlob(digest: Digest): Promise<Buffer>;
  /** Absolute path of a published blob (for tools that need a file). */
  blobPath(digest: Digest): string;
  /**
   * A resumable download: bytes already received for `digest` are kept under
   * a stable name, locked while one process writes them, so an interrupted
   * pull can continue with Range. Undefined when the blob is published (by
   * another process) by the time the lock is taken.
   */
  openPartialBlob?(expect: { digest: Digest; size: number }, opts?: { signal?: AbortSignal }): Promise<PartialDownload | undefined>;
}

/** A locked partial download (see BlobStore.openPartialBlob). */
export interface PartialDownload {
  /** Bytes already in the file: resume from here. */
  readonly offset: number;
  append(chunk: Uint8Array): Promise<void>;
  /** Empties the file to start over from byte 0. */
  restart(): Promise<void>;
  /** Verifies digest and size of exactly the bytes written and publishes them; throws (keeping the file) when they do not match. */
  commit(): Promise<{ digest: Digest; size: number }>;
  /** Deletes the file. */
  discard(): Promise<void>;
  /** Keeps the bytes for a later resume and lets go of the lock. */
  release(): Promise<void>;
}
