import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { digestOfHash, type Digest } from '../image/digest.js';
import type { LayerRef } from '../image/image.js';
import { layerCompression, ociLayerMediaType } from '../image/media-types.js';
import type { Descriptor } from '../image/types.js';
import type { BlobStore } from '../image/blob-store.js';
import { hashing } from './byte-stream.js';
import type { Compression } from './types.js';

/** What a layer must look like in an output: its compression and, when kiln compresses, the level. */
export interface CompressionRequest {
  compression: Compression;
  level?: number;
}

/** The store as the re-compressor needs it: blobs plus the diffID → blobs index. */
export interface LayerVariantStore extends Pick<BlobStore, 'writeBlob' | 'openBlob'> {
  blobsForDiffID(diffID: Digest, opts?: { verifiedOnly?: boolean }): Promise<Descriptor[]>;
  recordDiffID(diffID: Digest, blob: Descriptor, opts?: { verified?: boolean }): Promise<void>;
}

/**
 * The diffID of stored blob `blob` when it is to be taken as the layer of
 * `diffID`: `diffID` itself at no cost for a pair kiln hashed before, else
 * what decompressing and hashing the blob gives — recorded as proven when it
 * matches. A pair that only a config or a cache record claims is never taken
 * without this (any document may claim any diffID for its blob).
 */
export async function proveDiffID(store: LayerVariantStore, blob: Descriptor, diffID: Digest): Promise<Digest> {
  if ((await store.blobsForDiffID(diffID, { verifiedOnly: true })).some((d) => d.digest === blob.digest)) return diffID;
  const { uncompressedDigest } = await import('./decompress.js');
  const got = await uncompressedDigest(store.openBlob(blob.digest, { verify: 'once' }), blob.mediaType);
  if (got === diffID) await store.recordDiffID(diffID, blob, { verified: true });
  return got;
}

/** The compression a layer blob is in, as its media type says ('uncompressed' for a plain tar). */
export function compressionOf(mediaType: string): Compression {
  const c = layerCompression(mediaType);
  return c === 'none' ? 'uncompressed' : c;
}

// The codecs (compress.js, decompress.js: zlib, zstd, the gzip workers) are imported where a
// layer is converted or proven: every build makes a converter, and most never convert.

/**
 * Gives layers in a requested compression. A layer already in it is returned
 * as is (its media type in OCI terms); else a blob of the same diffID in that
 * compression that kiln hashed itself is reused; else the blob is
 * decompressed, checked against its diffID and compressed again in one
 * streaming pass, and the result recorded so the next build finds it. Each
 * (blob, compression) is converted once per converter, however many callers
 * ask at the same time.
 */
export class LayerRecompressor {
  private readonly inflight = new Map<string, Promise<LayerRef>>();
  /** Layers this converter produced in another compression than they came in: original blob digest → result. */
  readonly converted = new Map<Digest, LayerRef[]>();

  constructor(private readonly store: LayerVariantStore) {}

  layer(ref: LayerRef, want: CompressionRequest): Promise<LayerRef> {
    if (compressionOf(ref.descriptor.mediaType) === want.compression) {
      const mediaType = ociLayerMediaType(ref.descriptor.mediaType);
      return Promise.resolve(mediaType === ref.descriptor.mediaType ? ref : { ...ref, descriptor: { ...ref.descriptor, mediaType } });
    }
    const key = `${ref.descriptor.digest}|${want.compression}|${want.level ?? ''}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.convert(ref, want).then((out) => {
        const list = this.converted.get(ref.descriptor.digest) ?? [];
        if (!list.some((l) => l.descriptor.digest === out.descriptor.digest)) list.push(out);
        this.converted.set(ref.descriptor.digest, list);
        return out;
      });
      this.inflight.set(key, p);
      p.catch(() => this.inflight.delete(key));
    }
    return p;
  }

  private async convert(ref: LayerRef, want: CompressionRequest): Promise<LayerRef> {
    const { layerMediaType } = await import('./compress.js');
    const mediaType = layerMediaType(want.compression);
    for (const d of await this.store.blobsForDiffID(ref.diffID, { verifiedOnly: true })) {
      if (compressionOf(d.mediaType) === want.compression) return { descriptor: { mediaType, digest: d.digest, size: d.size }, diffID: ref.diffID };
    }
    const written = await recompressBlob(this.store.openBlob(ref.descriptor.digest, { verify: 'once' }), ref.descriptor.mediaType, ref.diffID, want, this.store);
    const descriptor: Descriptor = { mediaType, digest: written.digest, size: written.size };
    await this.store.recordDiffID(ref.diffID, descriptor, { verified: true });
    return { descriptor, diffID: ref.diffID };
  }
}

/**
 * Decompresses `blob`, hashes the tar (it must be `diffID`) and writes it in
 * the requested compression — one pass, memory flat in the layer size. A
 * mismatch fails with DIGEST_MISMATCH; the blob written by then is content-
 * addressed and unreferenced, so garbage collection takes it.
 */
export async function recompressBlob(
  blob: Readable,
  mediaType: string,
  diffID: Digest,
  want: CompressionRequest,
  store: Pick<BlobStore, 'writeBlob'>,
): Promise<{ digest: Digest; size: number }> {
  const { compressStream } = await import('./compress.js');
  const { openUncompressed } = await import('./decompress.js');
  const tarHash = createHash('sha256');
  const tarCount = { bytes: 0 };
  const tar = hashing(openUncompressed(blob, mediaType), tarHash, tarCount);
  const written = await store.writeBlob(hashing(compressStream(tar, want.compression, want.level), null, { bytes: 0 }));
  const got = digestOfHash(tarHash);
  if (got !== diffID) throw new KilnError('DIGEST_MISMATCH', `layer blob decompresses to ${got}, expected diffID ${diffID}`);
  return written;
}
