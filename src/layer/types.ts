import type { Readable } from 'node:stream';
import type { Digest } from '../image/digest.js';

/**
 * One file-system entry of a layer, independent of where it comes from (a build
 * context for COPY, an overlay upperdir for RUN, another image's snapshot for
 * COPY --from). The layer writer turns a sorted sequence of these into a tar.
 */
export interface LayerEntry {
  /** Path inside the image, relative, no leading "/" or "./", "/"-separated; directories without trailing "/". */
  path: string;
  type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';
  /** Permission bits plus setuid/setgid/sticky (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Modification time in seconds since the epoch (fractional allowed). */
  mtime: number;
  /** Regular files: byte length of the content. */
  size?: number;
  /** Symlink target, or for hardlinks the path (in-layer) of the first entry. */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** Extended attributes, values as raw bytes (binary-safe: security.capability). */
  xattrs?: Record<string, Buffer>;
  /** Regular files: opens the content. Called at most once, in order. */
  open?: () => Readable;
}

export type Compression = 'gzip' | 'zstd' | 'uncompressed';

export interface LayerWriteOptions {
  compression?: Compression;
  compressionLevel?: number;
  /** Clamp every mtime to this (SOURCE_DATE_EPOCH) for reproducible layers. */
  sourceDateEpoch?: number;
}

/** What writing a layer produced: a blob in the store plus the digest of its uncompressed tar. */
export interface WrittenLayer {
  mediaType: string;
  digest: Digest;
  size: number;
  diffID: Digest;
  uncompressedSize: number;
}
