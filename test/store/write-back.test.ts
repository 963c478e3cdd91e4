import { open, readFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { Store } from '../../src/store/store.js';
import { WRITE_BACK_STEP, WriteBack } from '../../src/store/write-back.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A real file handle whose datasync calls are counted and held until released. */
function countingHandle(fh: FileHandle): { handle: FileHandle; calls: () => number; release: () => void } {
  let calls = 0;
  let releases: Array<() => void> = [];
  const handle = new Proxy(fh, {
    get(target, prop, receiver) {
      if (prop === 'datasync') {
        return async () => {
          calls++;
          await new Promise<void>((r) => releases.push(r));
          await target.datasync();
        };
      }
      const v: unknown = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    handle,
    calls: () => calls,
    release: () => {
      const rs = releases;
      releases = [];
      for (const r of rs) r();
    },
  };
}

describe('early writeback of a blob being written', () => {
  let t: Awaited<ReturnType<typeof tempDir>>;
  beforeEach(async () => (t = await tempDir()));
  afterEach(async () => t.cleanup());

  it('flushes once per step, one flush at a time, and settles before the file is closed', async () => {
    const fh = await open(join(t.path, 'f'), 'w');
    const c = countingHandle(fh);
    const step = 64 * 1024;
    const wb = new WriteBack(c.handle, step);
    const piece = Buffer.alloc(step / 2, 7);
    let size = 0;
    const write = async (): Promise<void> => {
      await fh.write(piece, 0, piece.length, size);
      size += piece.length;
      wb.wrote(size);
    };
    await write();
    expect(c.calls()).toBe(0); // half a step: nothing yet
    await write();
    expect(c.calls()).toBe(1); // a whole step: one flush started
    await write();
    await write();
    expect(c.calls()).toBe(1); // two steps on, but the first flush still runs: no second one
    c.release();
    await wb.settle();
    await write();
    expect(c.calls()).toBe(2); // the next write after it finished starts the next flush
    c.release();
    await wb.settle();
    await fh.close();
    expect((await readFile(join(t.path, 'f'))).length).toBe(5 * piece.length);
  });

  it("keeps a failed flush's error for settle() and starts no more (fdatasync of /dev/null is EINVAL)", async () => {
    const fh = await open('/dev/null', 'w');
    try {
      const wb = new WriteBack(fh, 1);
      wb.wrote(1);
      await expect(wb.settle()).rejects.toMatchObject({ code: 'EINVAL' });
      wb.wrote(10);
      await expect(wb.settle()).rejects.toMatchObject({ code: 'EINVAL' });
    } finally {
      await fh.close();
    }
  });

  it('a blob of several steps is published byte for byte under its digest', async () => {
    const store = await Store.open(join(t.path, 'store'));
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE(i * 2654435761 >>> 0, i);
    const chunks = Math.ceil((2.5 * WRITE_BACK_STEP) / chunk.length);
    const all = Buffer.concat(Array.from({ length: chunks }, (_, i) => Buffer.concat([chunk.subarray(i), chunk.subarray(0, i)])));
    const { digest, size } = await store.writeBlob(Readable.from(Array.from({ length: chunks }, (_, i) => all.subarray(i * chunk.length, (i + 1) * chunk.length))));
    expect(size).toBe(all.length);
    expect(digest).toBe(sha256(all));
    expect(sha256(await readFile(store.blobPath(digest)))).toBe(digest);
  });
});
