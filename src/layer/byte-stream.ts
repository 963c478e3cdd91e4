import type { Hash } from 'node:crypto';

/** Bytes in order, from a stream, a generator or an array of chunks. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** Passes bytes through unchanged while counting (and, given a hash, hashing) them. */
export async function* hashing(src: ByteSource, hash: Hash | null, count: { bytes: number }): AsyncGenerator<Uint8Array> {
  for await (const chunk of src) {
    hash?.update(chunk);
    count.bytes += chunk.length;
    yield chunk;
  }
}
