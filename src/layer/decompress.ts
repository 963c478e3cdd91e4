import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { KilnError, isKilnError } from '../errors/index.js';
import { layerCompression } from '../image/media-types.js';
import { pipeThrough } from './compress.js';

export type DetectedCompression = 'gzip' | 'zstd' | 'none';

/** Compression told by the first bytes, when they say anything. */
export function sniffCompression(head: Uint8Array): DetectedCompression | undefined {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  if (head.length >= 4) return 'none';
  return undefined;
}

async function* decompressed(src: AsyncIterable<Uint8Array>, mediaType: string): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLen = 0;
  let done = false;
  while (headLen < 4) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head.push(Buffer.from(r.value));
    headLen += r.value.length;
  }
  const first = Buffer.concat(head);
  // The bytes win over the media type: registries and old tools mislabel layers.
  const kind = sniffCompression(first) ?? layerCompression(mediaType);
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.length > 0) yield first;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
    }
  }
  try {
    if (kind === 'gzip') {
      // Node's gunzip reads concatenated members (parallel-gzip layers) as one stream.
      const out = pipeline(Readable.from(rest()), createGunzip({ chunkSize: 256 * 1024 }), () => {});
      yield* out as AsyncIterable<Buffer>;
    } else if (kind === 'zstd') {
      yield* pipeThrough('zstd', ['-dc', '-q'], rest(), 'zstd decompression');
    } else {
      yield* rest();
    }
  } catch (e) {
    if (isKilnError(e)) throw e;
    throw new KilnError('ARCHIVE', `cannot decompress layer (${kind}): ${(e as Error).message}`, { cause: e });
  }
}

/** The tar bytes of a layer blob, decompressed as its first bytes (or else its media type) say. */
export function openUncompressed(compressed: Readable | AsyncIterable<Uint8Array>, mediaType: string): Readable {
  return Readable.from(decompressed(compressed, mediaType), { objectMode: false });
}
