import { createHash } from 'node:crypto';
import { KilnError } from '../errors/index.js';
import { digestOfHash } from '../image/digest.js';
import type { BlobStore } from '../image/blob-store.js';
import { hashing, teeBytes, untilAborted, type ByteSource } from './byte-stream.js';
import { extractTar } from './extract.js';
import { compressStream, layerMediaType } from './compress.js';
import { tarStream } from './tar-writer.js';
import type { Compression, LayerEntry, LayerWriteOptions, WrittenLayer } from './types.js';

/**
 * Writes a layer in one streaming pass: tar → sha256 (diffID) → compressor →
 * store (which hashes what it writes: that is the blob's digest, so it is not
 * computed twice). Nothing is buffered beyond the compressor's small window,
 * so memory does not grow with the layer.
 *
 * With `snapshotDir`, the same tar is also extracted there as it is written
 * (overlay form, as a snapshot made from the blob would be): a step whose
 * layer a later RUN mounts reads its sources once, instead of writing the
 * blob and then reading, decompressing and unpacking it again. The directory
 * is complete when the promise resolves; on failure its content is
 * unspecified and the caller removes it.
 */
export async function writeLayer(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  store: BlobStore,
  opts: LayerWriteOptions = {},
  snapshotDir?: string,
): Promise<WrittenLayer> {
  const compression = opts.compression ?? 'gzip';
  // gzip cuts the tar into blocks by copying each chunk before it asks for the next, so the writer
  // may reuse its buffers; the store (write-behind), zstd's pipe and a snapshot tee keep chunks longer
  const reuseChunks = compression === 'gzip' && snapshotDir === undefined;
  let tar: ByteSource = tarStream(entries, { sourceDateEpoch: opts.sourceDateEpoch, reuseChunks });
  // before the tee: the snapshot's extraction then stops with the blob
  if (opts.signal) tar = untilAborted(tar, opts.signal);
  let snapshot: Promise<void> | undefined;
  if (snapshotDir !== undefined) {
    const tee = teeBytes(tar, (bytes) => extractTar(bytes, snapshotDir));
    tar = tee.bytes;
    snapshot = tee.done;
  }
  try {
    const written = await writeTar(tar, store, compression, opts.compressionLevel);
    await snapshot;
    return written;
  } catch (e) {
    // the extraction stops with the stream; wait for it so nothing writes into the directory once the caller removes it
    await snapshot?.catch(() => undefined);
    throw e;
  }
}

async function writeTar(tar: ByteSource, store: BlobStore, compression: Compression, level: number | undefined): Promise<WrittenLayer> {
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
  const blob = hashing(compressStream(hashing(tar, diffHash, tarCount), compression, level), null, blobCount);
  const written = await store.writeBlob(blob);
  if (written.size !== blobCount.bytes) throw new KilnError('INTERNAL', `store wrote ${written.size} bytes of a ${blobCount.bytes}-byte blob`);
  return { mediaType: layerMediaType(compression), digest: written.digest, size: written.size, diffID: digestOfHash(diffHash), uncompressedSize: tarCount.bytes };
}
