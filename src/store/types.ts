import type { Readable } from 'node:stream';
import type { Digest } from '../image/digest.js';
import type { Descriptor } from '../image/types.js';

export interface BlobWriteExpectation {
  digest?: Digest;
  size?: number;
}

/**
 * The content-addressed side of the store, the only part the registry client
 * and the layer writer need. Blobs stream through sha256 into tmp/ and are
 * renamed into place after fsync; a mismatching blob is never published.
 */
export interface BlobStore {
  hasBlob(digest: Digest): Promise<boolean>;
  /** Size in bytes, or undefined when absent. */
  blobSize(digest: Digest): Promise<number | undefined>;
  /** Streams `data` into the store; verifies `expect` when given. Returns the digest and size actually written. */
  writeBlob(data: Readable | AsyncIterable<Uint8Array>, expect?: BlobWriteExpectation): Promise<{ digest: Digest; size: number }>;
  /** Convenience for small JSON/bytes documents. */
  putBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }>;
  openBlob(digest: Digest, opts?: { verify?: boolean; start?: number }): Readable;
  readBlob(digest: Digest): Promise<Buffer>;
  /** Absolute path of a published blob (for tools that need a file). */
  blobPath(digest: Digest): string;
  /**
   * A resumable partial download: bytes already received for `digest` are kept
   * in tmp/ under a stable name so an interrupted pull can continue with Range.
   */
  partialBlob?(digest: Digest): Promise<{ offset: number; path: string }>;
}

/** Named references kept in index.json as org.opencontainers.image.ref.name annotations. */
export interface RefStore {
  resolve(ref: string): Promise<Descriptor | undefined>;
  setRef(ref: string, desc: Descriptor): Promise<void>;
  removeRef(ref: string): Promise<boolean>;
  listRefs(): Promise<Array<{ ref: string; descriptor: Descriptor }>>;
}
