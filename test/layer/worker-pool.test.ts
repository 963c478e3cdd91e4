import { gunzipSync } from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LayerWorkers } from '../../src/layer/worker-pool.js';

/** The pool's live workers (a private field, read here only to observe the idle stop). */
function workers(pool: LayerWorkers): number {
  return (pool as unknown as { slots: unknown[] }).slots.length;
}

describe('layer worker pool', () => {
  it('stops its workers once idle, and starts them again for the next layer', async () => {
    const pool = new LayerWorkers(2);
    const blocks = [randomBytes(1 << 20), Buffer.alloc(1 << 20, 7)];
    const first = await Promise.all(blocks.map((b) => pool.gzip(Uint8Array.prototype.slice.call(b), 1)));
    first.forEach((r, i) => expect(gunzipSync(r.out).equals(blocks[i]!)).toBe(true));
    expect(workers(pool)).toBe(2);
    // idle: the workers (a V8 isolate each) go, so a push after the build does not carry them
    await new Promise((r) => setTimeout(r, 600));
    expect(workers(pool)).toBe(0);
    const again = await pool.gzip(Uint8Array.prototype.slice.call(blocks[0]!), 1);
    expect(gunzipSync(again.out).equals(blocks[0]!)).toBe(true);
    expect(workers(pool)).toBe(1);
    await pool.close();
  });
});

describe('stopping the pool when a build is done with it', () => {
  it('stops idle workers at once, and leaves the pool alone while a block is being compressed', async () => {
    const pool = new LayerWorkers(2);
    const block = randomBytes(1 << 20);
    // busy: another build in the same process is compressing, so nothing is stopped under it
    const busy = pool.gzip(Uint8Array.prototype.slice.call(block), 9);
    await pool.stopIfIdle();
    expect(workers(pool)).toBe(1);
    const r = await busy;
    expect(gunzipSync(r.out).equals(block)).toBe(true);
    // idle: stopped now, not after the idle timer
    await pool.stopIfIdle();
    expect(workers(pool)).toBe(0);
    const again = await pool.gzip(Uint8Array.prototype.slice.call(block), 1);
    expect(gunzipSync(again.out).equals(block)).toBe(true);
    await pool.close();
  });
});

describe('batch reads on the layer workers', () => {
  it('reads a batch on one worker, counts it on shared memory before answering, and stops that worker when retired', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-pool-read-'));
    try {
      const files = ['a', 'b', 'c'].map((n, i) => {
        const path = join(dir, n);
        writeFileSync(path, n.repeat(100 + i));
        const st = statSync(path);
        return { path, size: st.size, dev: st.dev, ino: st.ino };
      });
      const req = {
        paths: files.map((f) => `${f.path}\0`).join(''),
        meta: Float64Array.from(files.flatMap((f) => [f.size, f.dev, f.ino])),
        hash: Uint8Array.from([1, 0, 1]),
      };
      const pool = new LayerWorkers(2);
      const done = new Int32Array(new SharedArrayBuffer(4));
      // two batches posted at once: the second waits in the same worker, not for an answer to the first
      const [one, two] = await Promise.all([pool.readFiles(req, 1024, undefined, done), pool.readFiles(req, 1024, undefined, done)]);
      expect(Atomics.load(done, 0)).toBe(2);
      expect(workers(pool)).toBe(1);
      for (const r of [one!, two!]) {
        expect([...r.ok]).toEqual([1, 1, 1]);
        expect(Buffer.from(r.data, 0, 303).toString()).toBe('a'.repeat(100) + 'b'.repeat(101) + 'c'.repeat(102));
        expect(r.hex.slice(0, 64)).toBe(createHash('sha256').update('a'.repeat(100)).digest('hex'));
        expect(r.hex.slice(64, 128)).toBe('0'.repeat(64));
      }
      // an idle reader takes gzip blocks too; retired, it stops at once, and the next batch starts a reader again
      await pool.gzip(Uint8Array.prototype.slice.call(Buffer.alloc(1 << 20, 1)), 1);
      pool.retireReader();
      expect(workers(pool)).toBe(0);
      expect([...(await pool.readFiles(req, 1024, undefined, done))!.ok]).toEqual([1, 1, 1]);
      expect(workers(pool)).toBe(1);
      await pool.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('work does not wait for a worker to start', () => {
  const started = async (ready: () => boolean): Promise<void> => {
    for (let i = 0; i < 1000 && !ready(); i++) await new Promise((r) => setTimeout(r, 10));
  };

  it('reports no worker ready for blocks on a fresh pool, starts one (only one while it starts), and takes blocks once it has', async () => {
    const pool = new LayerWorkers(2);
    try {
      // the caller compresses this block itself
      expect(pool.readyForBlocks()).toBe(false);
      expect(workers(pool)).toBe(1);
      expect(pool.readyForBlocks()).toBe(false);
      expect(workers(pool)).toBe(1);
      await started(() => pool.readyForBlocks());
      expect(pool.readyForBlocks()).toBe(true);
      const block = randomBytes(1 << 20);
      const r = await pool.gzip(Uint8Array.prototype.slice.call(block), 1);
      expect(gunzipSync(r.out).equals(block)).toBe(true);
    } finally {
      await pool.close();
    }
  });

  it('starts the reading worker on the first ask and reports it ready once it has started', async () => {
    const pool = new LayerWorkers(2);
    try {
      expect(pool.readerReady()).toBe(false);
      expect(workers(pool)).toBe(1);
      await started(() => pool.readerReady());
      expect(pool.readerReady()).toBe(true);
      expect(workers(pool)).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('a block queued while every worker is still starting is compressed once one has (the process does not exit under it)', async () => {
    const pool = new LayerWorkers(1);
    try {
      // a reader starting takes the one slot; the block waits for it instead of being dropped
      expect(pool.readerReady()).toBe(false);
      const block = Buffer.alloc(1 << 20, 3);
      const r = await pool.gzip(Uint8Array.prototype.slice.call(block), 1);
      expect(gunzipSync(r.out).equals(block)).toBe(true);
    } finally {
      await pool.close();
    }
  });
});

describe('workers that die before they start', () => {
  it('fail the blocks waiting for them instead of being started again and again, and none is started for a while', async () => {
    const pool = new LayerWorkers(2, 'throw new Error("no thread for you")');
    try {
      const block = Buffer.alloc(1 << 20, 5);
      await expect(pool.gzip(Uint8Array.prototype.slice.call(block), 1)).rejects.toThrow(/no layer worker could be started/);
      expect(workers(pool)).toBe(0);
      // the caller compresses and reads itself meanwhile: nothing is started
      expect(pool.readyForBlocks()).toBe(false);
      expect(pool.readerReady()).toBe(false);
      expect(workers(pool)).toBe(0);
    } finally {
      await pool.close();
    }
  });
});
