import { createHash } from 'node:crypto';
import { KilnError } from '../errors/index.js';
import { digestOfHash } from '../image/digest.js';
import type { BlobStore } from '../image/blob-store.js';
import { hashing } from './byte-stream.js';
import { compressStream, layerMediaType } from './compress.js';
import { tarStream } from './tar-writer.js';
import type { LayerEntry, LayerWriteOptions, WrittenLayer } from './types.js';

/**
 * Writes a layer in one streaming pass: tar → sha256 (diffID) → compressor →
 * store (which hashes what it writes: that is the blob's digest, so it is not
 * computed twice). Nothing is buffered beyond the compressor's small window,
 * so memory does not grow with the layer.
 */
export async function writeLayer(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  store: BlobStore,
  opts: LayerWriteOptions = {},
): Promise<WrittenLayer> {
  const compression = opts.compression ?? 'gzip';
  const tar = tarStream(entries, { sourceDateEpoch: opts.sourceDateEpoch });
  const tarCount = { bytes: 0 };

  if (compression === 'uncompressed') {
    // The blob is the tar: the store's digest is the diffID.
    const counted = hashing(tar, null, tarCount);
    const written = await store.writeBlob(counted);
    if (written.size !== tarCount.bytes) throw new KilnError('INTERNAL', `store wrote ${written.size} bytes of a ${tarCount.bytes}-byte layer`);
    return { mediaType: layerMediaType(compression), digest: written.digest, size: written.size, diffID: written.digest, uncompressedSize: tarCount.bytes };
  }

  const diffHash = createHash('sha256');
  const blobCount = { bytes: 0 };
  const blob = hashing(compressStream(hashing(tar, diffHash, tarCount), compression, opts.compressionLevel), null, blobCount);
  const written = await store.writeBlob(blob);
  if (written.size !== blobCount.bytes) throw new KilnError('INTERNAL', `store wrote ${written.size} bytes of a ${blobCount.bytes}-byte blob`);
  return { mediaType: layerMediaType(compression), digest: written.digest, size: written.size, diffID: digestOfHash(diffHash), uncompressedSize: tarCount.bytes };
}
