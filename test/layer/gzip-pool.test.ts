import { gunzipSync } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GzipPool } from '../../src/layer/gzip-pool.js';

/** The pool's live workers (a private field, read here only to observe the idle stop). */
function workers(pool: GzipPool): number {
  return (pool as unknown as { slots: unknown[] }).slots.length;
}

describe('gzip worker pool', () => {
  it('stops its workers once idle, and starts them again for the next layer', async () => {
    const pool = new GzipPool(2);
    const blocks = [randomBytes(1 << 20), Buffer.alloc(1 << 20, 7)];
    const first = await Promise.all(blocks.map((b) => pool.run(Uint8Array.prototype.slice.call(b), 1)));
    first.forEach((r, i) => expect(gunzipSync(r.out).equals(blocks[i]!)).toBe(true));
    expect(workers(pool)).toBe(2);
    // idle: the workers (a V8 isolate each) go, so a push after the build does not carry them
    await new Promise((r) => setTimeout(r, 600));
    expect(workers(pool)).toBe(0);
    const again = await pool.run(Uint8Array.prototype.slice.call(blocks[0]!), 1);
    expect(gunzipSync(again.out).equals(blocks[0]!)).toBe(true);
    expect(workers(pool)).toBe(1);
    await pool.close();
  });
});
