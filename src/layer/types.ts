import type { Readable } from 'node:stream';
import type { Digest } from '../image/digest.js';

/**
 * One file-system entry of a layer, independent of where it comes from (a build
 * context for COPY, an overlay upperdir for RUN, another image's snapshot for
 * COPY --from). The layer writer turns a sorted sequence of these into a tar.
 */
export interface LayerEntry {
  /**
   * Path inside the image, relative, no leading "/" or "./", "/"-separated;
   * directories without trailing "/". Sequences are ordered by `comparePaths`
   * (component-wise byte order: what a depth-first walk with sorted listings gives).
   */
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
  open?: (() => Readable) | undefined;
  /**
   * Regular files: a file on disk holding the content, read directly by the
   * writer (cheaper than a stream per file for many small files); preferred
   * over `open` when both are set. The content must still be exactly `size` bytes.
   */
  sourcePath?: string | undefined;
  /**
   * The inode `sourcePath` was listed as. The writer refuses to read a source whose descriptor
   * names another inode: the path was swapped (for a symlink, or a directory above it for one)
   * after the listing. Set for files of a tree someone else may change (the build context).
   */
  sourceInode?: SourceInode | undefined;
  /**
   * Regular files: told the sha256 (hex) of the content once the writer has read all of it. A
   * step that runs before its cache key is known learns its sources' hashes from the one read
   * that puts them in the layer, instead of reading every file a second time to hash it. The
   * entry comes with it, so one function serves every entry (a closure per file was 150 bytes of
   * memory each, held until the layer was written).
   */
  onContentDigest?: ((sha256Hex: string, entry: LayerEntry) => void) | undefined;
}

/** Which file a path named when it was listed (a context file's stat record has these fields). */
export interface SourceInode {
  readonly dev: number;
  readonly ino: number;
}

export type Compression = 'gzip' | 'zstd' | 'uncompressed';

export interface LayerWriteOptions {
  /** Default 'gzip'. */
  compression?: Compression;
  /**
   * gzip: 0–9, default 1 (blocks that do not compress are stored, whatever
   * the level); zstd: 1–19 (up to 22 with --ultra), default 3.
   */
  compressionLevel?: number;
  /** Clamp every mtime to this (SOURCE_DATE_EPOCH) for reproducible layers. */
  sourceDateEpoch?: number;
  /** The build's signal: the writer stops between two chunks of the tar once it fires, and no blob is published. */
  signal?: AbortSignal | undefined;
}

/** What writing a layer produced: a blob in the store plus the digest of its uncompressed tar. */
export interface WrittenLayer {
  mediaType: string;
  digest: Digest;
  size: number;
  diffID: Digest;
  uncompressedSize: number;
}
