import { describe, expect, it } from 'vitest';
import { teeBytes } from '../../src/layer/byte-stream.js';

async function* chunks(n: number, size = 3, failAt?: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < n; i++) {
    if (i === failAt) throw new Error('source failed');
    yield new Uint8Array(size).fill(i);
  }
}

async function drain(src: AsyncIterable<Uint8Array>): Promise<number[]> {
  const out: number[] = [];
  for await (const c of src) out.push(...c);
  return out;
}

describe('teeBytes', () => {
  it('gives the side consumer exactly the bytes the main reader gets, in order', async () => {
    let side: number[] = [];
    const t = teeBytes(chunks(50), async (b) => {
      side = await drain(b);
    });
    const main = await drain(t.bytes);
    await t.done;
    expect(main).toHaveLength(150);
    expect(side).toEqual(main);
  });

  it('keeps the source at most maxQueued chunks ahead of a slow side consumer', async () => {
    let pulled = 0;
    let maxAhead = 0;
    let consumed = 0;
    async function* counted(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < 40; i++) {
        pulled++;
        maxAhead = Math.max(maxAhead, pulled - consumed);
        yield new Uint8Array([i]);
      }
    }
    const t = teeBytes(counted(), async (b) => {
      for await (const _ of b) {
        consumed++;
        await new Promise((r) => setTimeout(r, 1));
      }
    }, 4);
    await drain(t.bytes);
    await t.done;
    expect(consumed).toBe(40);
    // the queue holds at most 4 plus the chunk being handed over
    expect(maxAhead).toBeLessThanOrEqual(6);
  });

  it('a failing side consumer fails the main reader with its error', async () => {
    const t = teeBytes(chunks(100), async (b) => {
      let n = 0;
      for await (const _ of b) if (++n === 3) throw new Error('disk full');
    });
    await expect(drain(t.bytes)).rejects.toThrow('disk full');
    await expect(t.done).rejects.toThrow('disk full');
  });

  it('a main reader that stops early ends the side consumer with an error instead of leaving it waiting', async () => {
    const t = teeBytes(chunks(100, 3, 10), (b) => drain(b).then(() => undefined));
    await expect(drain(t.bytes)).rejects.toThrow('source failed');
    await expect(t.done).rejects.toThrow('stopped before its end');

    const t2 = teeBytes(chunks(100), (b) => drain(b).then(() => undefined));
    for await (const _ of t2.bytes) break;
    await expect(t2.done).rejects.toThrow('stopped before its end');
  });

  it('a side consumer that stops reading early is fed no more, and the main reader goes on', async () => {
    const t = teeBytes(chunks(100), async (b) => {
      for await (const _ of b) return;
    }, 2);
    expect(await drain(t.bytes)).toHaveLength(300);
    await t.done;
  });
});
