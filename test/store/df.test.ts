import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { emptyConfig, withLayer } from '../../src/image/config.js';
import type { Digest } from '../../src/image/digest.js';
import { hostPlatform } from '../../src/image/platform.js';
import type { WrittenLayer } from '../../src/layer/index.js';
import { prune } from '../../src/store/gc.js';
import { parseDuration, parseSize } from '../../src/store/size.js';
import { storeUsage, type StoreUsageReport } from '../../src/store/usage.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { tempStore } from '../helpers/temp-dir.js';
import { DAY, duFiles, fileSize, makeCacheMount, makeLog, putRecord, randomLayer } from './gc-fixture.js';

/**
 * `kiln df` against bytes measured with stat and find(1): busybox (tagged);
 * "two" (tagged) = busybox's layer + its own; an unnamed kept image with its
 * own layer; a layer only the cache holds; a record naming busybox's layer; a
 * record whose layer is gone; snapshots, a cache mount, a log, a tmp file and
 * a stray blob.
 */
let t: Awaited<ReturnType<typeof tempStore>>;
let u: StoreUsageReport;
const d: {
  bbBlobs: number[];
  bbLayer: number;
  twoBlobs: number[];
  untaggedBlobs: number[];
  cacheLayer: WrittenLayer;
  snapBytes: { bb: number; cache: number; two: number };
  stray: number;
  digests: { bb: Digest; two: Digest; untagged: Digest };
} = {} as never;

async function sizes(store: typeof t.store, digests: Digest[]): Promise<number[]> {
  return Promise.all(digests.map((x) => fileSize(store.blobPath(x))));
}

beforeAll(async () => {
  t = await tempStore();
  const s = t.store;
  const now = Date.now();
  await makeBusyboxImage(s, 'localhost/busybox:latest');
  const bb = await s.getImage('localhost/busybox:latest');
  const bbLayer = bb.layers[0]!;

  const own = await randomLayer(s, 'two', 150_000);
  let cfg = withLayer(bb.config, own.diffID, { created_by: 'COPY two /' });
  const two = await s.putImage({ config: cfg, layers: [bbLayer, own] }, { ref: 'localhost/two:1' });

  const lone = await randomLayer(s, 'lone', 50_000);
  cfg = withLayer(emptyConfig(hostPlatform()), lone.diffID, { created_by: 'COPY lone /' });
  const untagged = await s.putImage({ config: cfg, layers: [lone] });
  await s.keepUntagged(untagged.descriptor);

  const cacheLayer = await randomLayer(s, 'cached', 100_000);
  await putRecord(s, 'R1', { mediaType: cacheLayer.mediaType, digest: cacheLayer.digest, size: cacheLayer.size, diffID: cacheLayer.diffID }, now - DAY);
  await putRecord(s, 'R5', { mediaType: bbLayer.mediaType, digest: bbLayer.digest, size: bbLayer.size, diffID: bbLayer.diffID }, now - 2 * DAY);
  const gone = await randomLayer(s, 'gone', 1000);
  await putRecord(s, 'R6', { mediaType: gone.mediaType, digest: gone.digest, size: gone.size, diffID: gone.diffID }, now);
  await rm(s.blobPath(gone.digest));

  const bbSnap = await s.snapshotPath(bbLayer);
  const cacheSnap = await s.snapshotPath({ descriptor: { mediaType: cacheLayer.mediaType, digest: cacheLayer.digest, size: cacheLayer.size }, diffID: cacheLayer.diffID });
  const twoSnap = await s.snapshotPath(two.layers[1]!);
  await makeCacheMount(t.root, 'apt-1', 70_000, now);
  await makeLog(t.root, 'cccccccccccc-2.log', 1234, now);
  await mkdir(join(s.layout.tmp, 'x'), { recursive: true });
  await writeFile(join(s.layout.tmp, 'x', 'in-flight'), Buffer.alloc(777));
  const stray = await s.putBytes(Buffer.from('stray bytes'));

  Object.assign(d, {
    bbBlobs: await sizes(s, [bb.descriptor.digest, bb.configDescriptor.digest, bbLayer.digest]),
    bbLayer: bbLayer.size,
    twoBlobs: await sizes(s, [two.descriptor.digest, two.configDescriptor.digest, own.digest]),
    untaggedBlobs: await sizes(s, [untagged.descriptor.digest, untagged.configDescriptor.digest, lone.digest]),
    cacheLayer,
    snapBytes: { bb: duFiles(bbSnap), cache: duFiles(cacheSnap), two: duFiles(twoSnap) },
    stray: stray.size,
    digests: { bb: bb.descriptor.digest, two: two.descriptor.digest, untagged: untagged.descriptor.digest },
  });
  u = await storeUsage(s, { verbose: true });
});
afterAll(async () => t.cleanup());

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe('kiln df accounting', () => {
  it('images: tagged and untagged, shared and unique bytes', () => {
    expect(u.images).toMatchObject({ count: 3, tagged: 2, untagged: 1, reclaimableBytes: 0 });
    expect(u.images.bytes).toBe(sum(d.bbBlobs) + sum(d.twoBlobs) + sum(d.untaggedBlobs));
    expect(u.images.sharedBytes).toBe(d.bbLayer);
    expect(u.images.uniqueBytes).toBe(u.images.bytes - d.bbLayer);
    const byRef = new Map(u.images.list!.map((i) => [i.ref ?? '<none>', i]));
    expect(byRef.get('localhost/busybox:latest')).toMatchObject({ bytes: sum(d.bbBlobs), sharedBytes: d.bbLayer, uniqueBytes: sum(d.bbBlobs) - d.bbLayer });
    expect(byRef.get('localhost/two:1')).toMatchObject({ bytes: sum(d.twoBlobs) + d.bbLayer, sharedBytes: d.bbLayer, uniqueBytes: sum(d.twoBlobs) });
    expect(byRef.get('<none>')).toMatchObject({ digest: d.digests.untagged, bytes: sum(d.untaggedBlobs), sharedBytes: 0 });
  });

  it('build cache: layers only the cache holds, shared layers, broken records', () => {
    expect(u.buildCache).toMatchObject({ records: 3, brokenRecords: 1, bytes: d.cacheLayer.size, sharedBytes: d.bbLayer, reclaimableBytes: d.cacheLayer.size });
    const list = u.buildCache.list!;
    // most recently used first
    expect(list.map((r) => r.createdBy)).toEqual(['RUN make R6', 'RUN make R1', 'RUN make R5']);
    expect(list[0]).toMatchObject({ broken: true, layerBytes: 0 });
    expect(list[1]).toMatchObject({ layer: d.cacheLayer.digest, layerBytes: d.cacheLayer.size, sharedWithImage: false, broken: false });
    expect(list[2]).toMatchObject({ layerBytes: d.bbLayer, sharedWithImage: true });
  });

  it('snapshots, cache mounts, logs, tmp and unreferenced blobs equal the bytes on disk', () => {
    expect(u.snapshots).toMatchObject({
      count: 3,
      bytes: d.snapBytes.bb + d.snapBytes.cache + d.snapBytes.two,
      imageBytes: d.snapBytes.bb + d.snapBytes.two,
      cacheOnlyBytes: d.snapBytes.cache,
      unusedBytes: 0,
    });
    expect(d.snapBytes.cache).toBe(100_000);
    expect(u.cacheMounts).toMatchObject({ count: 1, bytes: duFiles(join(t.root, 'cache-mounts')), reclaimableBytes: 70_000 });
    expect(u.cacheMounts.list).toEqual([{ name: 'apt-1', bytes: 70_000, lastUsed: expect.any(String) }]);
    expect(u.logs).toMatchObject({ count: 1, bytes: 1234 });
    expect(u.tmp.bytes).toBe(duFiles(t.store.layout.tmp));
    expect(u.tmp.bytes).toBe(777);
    expect(u.unreferenced).toMatchObject({ blobs: 1, bytes: d.stray });
  });

  it('the kinds partition the total, and the total is what is on disk', () => {
    const onDisk = duFiles(t.store.layout.blobs) + duFiles(join(t.root, 'cache-mounts')) + [d.snapBytes.bb, d.snapBytes.cache, d.snapBytes.two].reduce((a, b) => a + b, 0);
    expect(u.totalBytes).toBe(onDisk);
    expect(u.images.bytes + u.buildCache.bytes + u.unreferenced.bytes + u.snapshots.bytes + u.cacheMounts.bytes).toBe(u.totalBytes);
  });

  it('reclaimable is what prune --all frees', async () => {
    const r = await prune(t.store, { all: true, dryRun: true });
    const reclaim = u.buildCache.reclaimableBytes + u.snapshots.reclaimableBytes + u.cacheMounts.reclaimableBytes + u.logs.reclaimableBytes + u.unreferenced.reclaimableBytes;
    expect(r.freedBytes).toBe(reclaim + u.buildCache.recordFileBytes);
    expect(r.finalBytes).toBe(u.totalBytes - (u.buildCache.reclaimableBytes + u.snapshots.reclaimableBytes + u.cacheMounts.reclaimableBytes + u.unreferenced.reclaimableBytes));
  });
});

describe('sizes and durations', () => {
  it('parses sizes: SI decimal, IEC and single letters binary, plain bytes', () => {
    expect(parseSize('10GB')).toBe(10e9);
    expect(parseSize('10GiB')).toBe(10 * 2 ** 30);
    expect(parseSize('512m')).toBe(512 * 2 ** 20);
    expect(parseSize('1.5g')).toBe(1.5 * 2 ** 30);
    expect(parseSize('1048576')).toBe(1048576);
    expect(parseSize('100kB')).toBe(100_000);
    expect(parseSize('0')).toBe(0);
    for (const bad of ['', 'ten', '10XB', '-1', '1e9']) expect(() => parseSize(bad)).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });

  it('parses Go-style durations plus days and weeks', () => {
    expect(parseDuration('24h')).toBe(DAY);
    expect(parseDuration('30m')).toBe(30 * 60_000);
    expect(parseDuration('7d')).toBe(7 * DAY);
    expect(parseDuration('1h30m')).toBe(90 * 60_000);
    expect(parseDuration('1.5h')).toBe(90 * 60_000);
    expect(parseDuration('0')).toBe(0);
    // micro as Go spells it (U+00B5)
    expect(parseDuration('1500µs')).toBe(1.5);
    for (const bad of ['', '24', 'h', '1y', '1h 30m']) expect(() => parseDuration(bad)).toThrow(expect.objectContaining({ code: 'USAGE' }));
  });
});
