/**
 * layer/ — layers: sorted entries → tar → compression → digests in one
 * streaming pass; reading and safe extraction into snapshot directories;
 * overlay upperdir diffs; recompression between gzip and zstd. Blobs are
 * written through the BlobStore port (defined in image/).
 * May import: errors/, image/, rootless/, sys/.
 */
export type { Compression, LayerEntry, LayerWriteOptions, WrittenLayer } from './types.js';
export { comparePaths, compareNames } from './path-order.js';
export { writeLayer } from './write-layer.js';
export { tarStream, type TarWriteOptions } from './tar-writer.js';
export { compressStream, gzipStream, zstdStream, layerMediaType, DEFAULT_GZIP_LEVEL, DEFAULT_ZSTD_LEVEL, GZIP_BLOCK } from './compress.js';
export type { ByteSource } from './byte-stream.js';
export { layerWorkers, LayerWorkers } from './worker-pool.js';
export { openUncompressed, uncompressedDigest, sniffCompression, type DetectedCompression } from './decompress.js';
export { readTar, readLayer, type TarEntry } from './tar-reader.js';
export type { TarHeader } from './tar-format.js';
export { extractLayer, cleanEntryName } from './extract.js';
export { diffUpperdir, entriesFromDirectory, WHITEOUT_PREFIX, OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR, type WalkOptions } from './walk.js';
export { listXattrs, getXattr, setXattr } from './xattr.js';
export { LayerRecompressor, recompressBlob, compressionOf, type CompressionRequest, type LayerVariantStore } from './recompress.js';
