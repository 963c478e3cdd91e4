import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Digest } from '../../src/image/digest.js';
import type { WrittenLayer } from '../../src/layer/index.js';
import { AUTO_GC_MIN_BYTES, autoGc, defaultKeepStorage, prune, type PruneResult } from '../../src/store/gc.js';
import { storeUsage } from '../../src/store/usage.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { tempStore } from '../helpers/temp-dir.js';
import { DAY, duFiles, fileSize, makeCacheMount, makeLog, putRecord, randomLayer, recordPath } from './gc-fixture.js';

/**
 * A tagged busybox image; four layers only the build cache holds (L1–L3 gzip,
 * L4 uncompressed so its digest is its diffID), each with its record and
 * snapshot; a record naming busybox's own layer, used longest ago; a record
 * whose layer is gone; two cache mounts, logs and a stray blob.
 *
 * Last use, oldest first: R5 (busybox layer, 20 d), R1 (10 d), R2 (5 d),
 * R3 (2 d), R6 (broken, 1 d), R4 (1 h).
 */
interface Fixture {
  bb: { manifest: Digest; config: Digest; layer: Digest; snapshot: string };
  layers: WrittenLayer[];
  records: Digest[];
  broken: Digest;
  shared: Digest;
  stray: Digest;
  straySize: number;
  recordBytes: Map<Digest, number>;
  /** blob + snapshot bytes of L1..L4 */
  cost: number[];
  /** busybox blobs + its snapshot */
  base: number;
  mounts: { old: string; fresh: string; bytes: number };
  logs: { old: string; fresh: string; ofR1: string };
}

const SIZES = [100_000, 200_000, 300_000, 400_000];
const AGES = [10 * DAY, 5 * DAY, 2 * DAY, 3600_000];

let t: Awaited<ReturnType<typeof tempStore>>;
let f: Fixture;
let now: number;

async function setup(): Promise<Fixture> {
  const store = t.store;
  now = Date.now();
  await makeBusyboxImage(store, 'localhost/busybox:latest');
  const img = await store.getImage('localhost/busybox:latest');
  const bbLayer = img.layers[0]!;
  const bbSnap = await store.snapshotPath(bbLayer);
  const layers: WrittenLayer[] = [];
  const records: Digest[] = [];
  const cost: number[] = [];
  for (let i = 0; i < 4; i++) {
    const l = await randomLayer(store, `file${i + 1}`, SIZES[i]!, i === 3 ? 'uncompressed' : 'gzip');
    layers.push(l);
    await store.snapshotPath({ descriptor: { mediaType: l.mediaType, digest: l.digest, size: l.size }, diffID: l.diffID });
    records.push(await putRecord(store, `R${i + 1}`, { mediaType: l.mediaType, digest: l.digest, size: l.size, diffID: l.diffID }, now - AGES[i]!));
    cost.push(l.size + SIZES[i]!);
  }
  const shared = await putRecord(store, 'R5', { mediaType: bbLayer.mediaType, digest: bbLayer.digest, size: bbLayer.size, diffID: bbLayer.diffID }, now - 20 * DAY);
  const gone = await randomLayer(store, 'gone', 1000);
  const broken = await putRecord(store, 'R6', { mediaType: gone.mediaType, digest: gone.digest, size: gone.size, diffID: gone.diffID }, now - DAY);
  await rm(store.blobPath(gone.digest));
  const stray = await store.putBytes(Buffer.from('a blob nobody names'));
  const base = (await fileSize(store.blobPath(img.descriptor.digest))) + (await fileSize(store.blobPath(img.configDescriptor.digest))) + bbLayer.size + duFiles(bbSnap);
  const old = await makeCacheMount(t.root, 'go-build-old', 50_000, now - 10 * DAY);
  const fresh = await makeCacheMount(t.root, 'npm-fresh', 60_000, now - 3600_000);
  const logs = {
    old: await makeLog(t.root, 'aaaaaaaaaaaa-3.log', 1000, now - 8 * DAY),
    fresh: await makeLog(t.root, 'bbbbbbbbbbbb-4.log', 2000, now - 3600_000),
    ofR1: await makeLog(t.root, `${records[0]!.slice(7, 19)}-5.log`, 3000, now - 6 * DAY),
  };
  return {
    bb: { manifest: img.descriptor.digest, config: img.configDescriptor.digest, layer: bbLayer.digest, snapshot: bbSnap.slice(-12) },
    layers,
    records,
    broken,
    shared,
    stray: stray.digest,
    straySize: stray.size,
    recordBytes: new Map(await Promise.all([...records, shared, broken].map(async (k) => [k, await fileSize(recordPath(store, k))] as const))),
    cost,
    base,
    mounts: { old, fresh, bytes: 110_000 },
    logs,
  };
}

const snap = (l: WrittenLayer) => l.diffID.slice(7, 19);
const sorted = <T>(xs: T[]) => [...xs].sort();

async function snapshotsLeft(): Promise<string[]> {
  return sorted((await readdir(t.store.layout.snapshots)).filter((n) => /^[a-f0-9]{12}$/.test(n)));
}

async function expectBusyboxIntact(): Promise<void> {
  for (const d of [f.bb.manifest, f.bb.config, f.bb.layer]) expect(await t.store.hasBlob(d)).toBe(true);
  expect(await snapshotsLeft()).toContain(f.bb.snapshot);
  expect((await t.store.getImage('localhost/busybox:latest')).layers[0]!.digest).toBe(f.bb.layer);
}

/** The store as `kiln df` measures it now equals what prune said it would leave. */
async function expectFinal(r: PruneResult, bytes: number): Promise<void> {
  expect(r.finalBytes).toBe(bytes);
  expect((await storeUsage(t.store)).totalBytes).toBe(bytes);
}

beforeEach(async () => {
  t = await tempStore();
  f = await setup();
});
afterEach(async () => t.cleanup());

describe('prune: build-cache policy', () => {
  it('default: unreferenced blobs, records whose layer is gone and week-old logs; cache records, mounts and the uncompressed layer snapshot stay', async () => {
    const r = await prune(t.store, { now });
    expect(r.removedRecords).toEqual([f.broken]);
    expect(r.removedBlobs).toEqual([f.stray]);
    expect(r.removedSnapshots).toEqual([]);
    expect(r.removedCacheMounts).toEqual([]);
    expect(r.removedLogs).toEqual(['aaaaaaaaaaaa-3.log']);
    expect(existsSync(recordPath(t.store, f.broken))).toBe(false);
    for (const k of [...f.records, f.shared]) expect(existsSync(recordPath(t.store, k))).toBe(true);
    for (const l of f.layers) expect(await t.store.hasBlob(l.digest)).toBe(true);
    expect(await snapshotsLeft()).toEqual(sorted([f.bb.snapshot, ...f.layers.map(snap)]));
    expect(existsSync(f.logs.fresh) && existsSync(f.logs.ofR1)).toBe(true);
    await expectFinal(r, f.base + f.mounts.bytes + f.cost.reduce((a, b) => a + b, 0));
  });

  it('--keep-storage evicts least recently used records until the store fits, then sweeps', async () => {
    const limit = f.base + f.mounts.bytes + f.cost[2]! + f.cost[3]!;
    const dry = await prune(t.store, { keepStorage: limit - 1, dryRun: true, now });
    // one byte less and R3 has to go too
    expect(dry.removedRecords).toEqual([f.broken, f.records[0], f.records[1], f.records[2]]);
    expect(dry.finalBytes).toBe(f.base + f.mounts.bytes + f.cost[3]!);
    expect(existsSync(recordPath(t.store, f.records[0]!))).toBe(true);
    expect(await t.store.hasBlob(f.stray)).toBe(true);

    const r = await prune(t.store, { keepStorage: limit, now });
    // R5 is the oldest but stays: busybox, a tagged image, holds its layer, so evicting it would free nothing
    expect(r.removedRecords).toEqual([f.broken, f.records[0], f.records[1]]);
    expect(existsSync(recordPath(t.store, f.shared))).toBe(true);
    expect(sorted(r.removedBlobs)).toEqual(sorted([f.stray, f.layers[0]!.digest, f.layers[1]!.digest]));
    expect(sorted(r.removedSnapshots)).toEqual(sorted([snap(f.layers[0]!), snap(f.layers[1]!)]));
    expect(r.removedCacheMounts).toEqual([]);
    expect(r.removedLogs).toEqual(['aaaaaaaaaaaa-3.log']);
    expect(r.overLimit).toBeUndefined();
    for (const k of [f.records[2]!, f.records[3]!]) expect(existsSync(recordPath(t.store, k))).toBe(true);
    for (const l of f.layers.slice(2)) expect(await t.store.hasBlob(l.digest)).toBe(true);
    await expectBusyboxIntact();
    await expectFinal(r, limit);
  });

  it('--keep-storage below what images need: everything evictable goes, images stay, and the result says so', async () => {
    const r = await prune(t.store, { keepStorage: 1, now });
    expect(r.removedRecords).toEqual([f.broken, ...f.records]);
    expect(r.overLimit).toBe(true);
    // cache mounts only go with --all
    expect(r.removedCacheMounts).toEqual([]);
    await expectBusyboxIntact();
    expect(await snapshotsLeft()).toEqual([f.bb.snapshot]);
    await expectFinal(r, f.base + f.mounts.bytes);

    const all = await prune(t.store, { keepStorage: 1, all: true, now });
    expect(all.removedCacheMounts).toEqual(['go-build-old', 'npm-fresh']);
    expect(all.overLimit).toBe(true);
    await expectFinal(all, f.base);
  });

  it('--filter until: only records and cache mounts unused for longer go, and logs older than that', async () => {
    const r = await prune(t.store, { until: 7 * DAY, now });
    expect(r.removedRecords).toEqual([f.broken, f.shared, f.records[0]]);
    expect(r.removedBlobs.sort()).toEqual(sorted([f.stray, f.layers[0]!.digest]));
    expect(r.removedSnapshots).toEqual([snap(f.layers[0]!)]);
    expect(r.removedCacheMounts).toEqual(['go-build-old']);
    expect(existsSync(f.mounts.old) || existsSync(`${f.mounts.old}.lock`)).toBe(false);
    expect(existsSync(f.mounts.fresh)).toBe(true);
    expect(r.removedLogs).toEqual(['aaaaaaaaaaaa-3.log']);
    expect(existsSync(f.logs.ofR1)).toBe(true);
    await expectBusyboxIntact();
    await expectFinal(r, f.base + 60_000 + f.cost[1]! + f.cost[2]! + f.cost[3]!);

    // combined with --keep-storage, the filter limits what may be evicted
    const k = await prune(t.store, { until: 3 * DAY, keepStorage: 1, now });
    expect(k.removedRecords).toEqual([f.records[1]]);
    expect(k.overLimit).toBe(true);
  });

  it('--all: every record, layer only the cache holds, cache mount and log; the tagged image keeps its blobs and snapshot', async () => {
    const r = await prune(t.store, { all: true, now });
    expect(r.removedRecords).toEqual([f.broken, f.shared, ...f.records]);
    expect(sorted(r.removedBlobs)).toEqual(sorted([f.stray, ...f.layers.map((l) => l.digest)]));
    expect(sorted(r.removedSnapshots)).toEqual(sorted(f.layers.map(snap)));
    expect(r.removedCacheMounts).toEqual(['go-build-old', 'npm-fresh']);
    expect(r.removedLogs).toHaveLength(3);
    expect(await readdir(join(t.root, 'cache', 'records'))).toEqual([]);
    expect(await readdir(join(t.root, 'cache-mounts'))).toEqual([]);
    await expectBusyboxIntact();
    await expectFinal(r, f.base);
    // record files count too: they are part of what was deleted
    const records = [...f.recordBytes.values()].reduce((a, b) => a + b, 0);
    expect(r.freedBytes).toBe(f.cost.reduce((a, b) => a + b, 0) + f.mounts.bytes + 6000 + f.straySize + records);
  });

  it('leaves a cache mount whose lock another process holds', async () => {
    const child = spawn('flock', ['-s', `${f.mounts.old}.lock`, '-c', 'echo locked; read x'], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    try {
      const r = await prune(t.store, { all: true, now });
      expect(r.removedCacheMounts).toEqual(['npm-fresh']);
      expect(existsSync(f.mounts.old)).toBe(true);
      expect(r.finalBytes).toBe(f.base + 50_000);
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.once('close', resolve));
    }
  });
});

describe('autoGc', () => {
  it('does nothing under the cap', async () => {
    const before = (await storeUsage(t.store)).totalBytes;
    expect(await autoGc(t.store, { keepStorage: before })).toBeUndefined();
    expect(await autoGc(t.store, {})).toBeUndefined();
    expect(await t.store.hasBlob(f.stray)).toBe(true);
    expect(existsSync(recordPath(t.store, f.broken))).toBe(true);
    expect((await storeUsage(t.store)).totalBytes).toBe(before);
  });

  it('0 disables it', async () => {
    expect(await autoGc(t.store, { keepStorage: 0 })).toBeUndefined();
    expect(existsSync(recordPath(t.store, f.records[0]!))).toBe(true);
  });

  it('above the cap evicts least recently used records first', async () => {
    const cap = f.base + f.mounts.bytes + f.cost[1]! + f.cost[2]! + f.cost[3]!;
    const r = await autoGc(t.store, { keepStorage: cap });
    expect(r?.removedRecords).toEqual([f.broken, f.records[0]]);
    expect(r?.removedCacheMounts).toEqual([]);
    expect(await t.store.hasBlob(f.layers[0]!.digest)).toBe(false);
    expect(await t.store.hasBlob(f.layers[1]!.digest)).toBe(true);
    await expectBusyboxIntact();
    await expectFinal(r!, cap);
  });

  it('skips silently when another kiln process has the store open', async () => {
    const child = spawn('flock', ['-s', join(t.store.layout.locks, 'store'), '-c', 'echo locked; read x'], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    try {
      expect(await autoGc(t.store, { keepStorage: 1 })).toBeUndefined();
      for (const k of f.records) expect(existsSync(recordPath(t.store, k))).toBe(true);
      await expect(prune(t.store, { all: true })).rejects.toMatchObject({ code: 'STORE_LOCKED' });
    } finally {
      child.stdin.end();
      await new Promise((resolve) => child.once('close', resolve));
    }
    expect((await autoGc(t.store, { keepStorage: 1 }))?.overLimit).toBe(true);
  });

  it('defaults to a tenth of the file system, at least 2 GiB', async () => {
    const fs = await statfs(t.root);
    const expected = Math.max(AUTO_GC_MIN_BYTES, Math.floor(Number(fs.blocks) * Number(fs.bsize) * 0.1));
    expect(await defaultKeepStorage(t.root)).toBe(expected);
  });
});
