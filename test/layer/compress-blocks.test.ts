import { describe, expect, it } from 'vitest';
import { blocks } from '../../src/layer/compress.js';

/**
 * blocks() hands on buffers that are not zero-filled: fresh ones come from Buffer.allocUnsafeSlow
 * and recycled ones hold an earlier block's bytes. What it yields must be exactly the source's
 * bytes, whatever was in the memory before: stale bytes in a layer blob would leak the process's
 * memory into an image.
 */
const SIZE = 4096;
const STALE = 0xee;

async function* chunks(bytes: Uint8Array, step: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += step) yield bytes.subarray(at, at + step);
}

function source(n: number): Uint8Array {
  // never STALE: a stale byte in the output can only come from the buffers
  return Uint8Array.from({ length: n }, (_, i) => i % 251);
}

describe('blocks (the gzip stream\'s regrouping)', () => {
  it.each([1, SIZE - 1, SIZE, SIZE + 1, 2 * SIZE + SIZE / 2])('yields exactly the %i source bytes from stale recycled buffers', async (n) => {
    const src = source(n);
    const free = Array.from({ length: 4 }, () => new Uint8Array(SIZE).fill(STALE).buffer);
    const out: Uint8Array[] = [];
    // chunk sizes that do not divide the block size, so blocks are filled across chunk borders
    for await (const b of blocks(chunks(src, 1000), SIZE, free)) out.push(Uint8Array.from(b));
    expect(out.slice(0, -1).every((b) => b.length === SIZE)).toBe(true);
    expect(out.at(-1)!.length).toBe(n % SIZE || SIZE);
    expect(Buffer.concat(out).equals(src)).toBe(true);
  });

  it('yields exactly the source bytes from fresh buffers', async () => {
    const src = source(3 * SIZE + 17);
    const out: Uint8Array[] = [];
    for await (const b of blocks(chunks(src, 999), SIZE)) out.push(Uint8Array.from(b));
    expect(Buffer.concat(out).equals(src)).toBe(true);
  });
});
