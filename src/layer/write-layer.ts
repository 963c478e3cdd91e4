import { createHash, type Hash } from 'node:crypto';
import { KilnError } from '../errors/index.js';
import { digestOfHash } from '../image/digest.js';
import type { BlobStore } from '../store/types.js';
import { compressStream, layerMediaType } from './compress.js';
import { tarStream } from './tar-writer.js';
import type { LayerEntry, LayerWriteOptions, WrittenLayer } from './types.js';

/** Passes bytes through unchanged while hashing and counting them. */
export async function* hashing(src: AsyncIterable<Uint8Array>, hash: Hash, count: { bytes: number }): AsyncGenerator<Uint8Array> {
  for await (const chunk of src) {
    hash.update(chunk);
    count.bytes += chunk.length;
    yield chunk;
  }
}

/**
 * Writes a layer in one streaming pass: tar → sha256 (diffID) → compressor →
 * sha256 (digest) → store. Nothing is buffered beyond the compressor's small
 * window, so memory does not grow with the layer.
 */
export async function writeLayer(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  store: BlobStore,
  opts: LayerWriteOptions = {},
): Promise<WrittenLayer> {
  const compression = opts.compression ?? 'gzip';
  const diffHash = createHash('sha256');
  const tarCount = { bytes: 0 };
  const blobHash = createHash('sha256');
  const blobCount = { bytes: 0 };

  const tar = hashing(tarStream(entries, { sourceDateEpoch: opts.sourceDateEpoch }), diffHash, tarCount);
  const blob = compression === 'uncompressed' ? tar : hashing(compressStream(tar, compression, opts.compressionLevel), blobHash, blobCount);

  const written = await store.writeBlob(blob);
  const diffID = digestOfHash(diffHash);
  const digest = compression === 'uncompressed' ? diffID : digestOfHash(blobHash);
  const size = compression === 'uncompressed' ? tarCount.bytes : blobCount.bytes;
  if (written.digest !== digest || written.size !== size) {
    throw new KilnError('INTERNAL', `store wrote ${written.digest} (${written.size} bytes) but the layer writer computed ${digest} (${size} bytes)`);
  }
  return { mediaType: layerMediaType(compression), digest, size, diffID, uncompressedSize: tarCount.bytes };
}
