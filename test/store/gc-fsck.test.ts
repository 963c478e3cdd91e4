import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { fsck } from '../../src/store/fsck.js';
import { liveLeftovers } from '../../src/sandbox/scratch.js';
import { prune } from '../../src/store/gc.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { tempStore } from '../helpers/temp-dir.js';

describe('prune', () => {
  let t: Awaited<ReturnType<typeof tempStore>>;
  beforeEach(async () => (t = await tempStore()));
  afterEach(async () => t.cleanup());

  it('keeps what names reach, deletes the rest, and keeps what cache records name', async () => {
    const bb = await makeBusyboxImage(t.store, 'localhost/busybox:latest');
    const img = await t.store.getImage('localhost/busybox:latest');
    const stray = await t.store.putBytes(Buffer.from('nobody needs me'));
    const cached = await t.store.putBytes(Buffer.from('a cached layer'));
    const viaDiffID = await t.store.putBytes(Buffer.from('compressed form'));
    const diffID = sha256('uncompressed form');
    await t.store.recordDiffID(diffID, { mediaType: MediaType.OCI_LAYER_GZIP, ...viaDiffID });
    await mkdir(join(t.root, 'cache', 'records'), { recursive: true });
    await writeFile(join(t.root, 'cache', 'records', 'k.json'), JSON.stringify({ version: 1, layer: { digest: cached.digest }, other: { diffID } }));
    // fake snapshot dirs: one for a live layer, one orphan, one interrupted
    const live = join(t.root, 's', img.layers[0]!.diffID.slice(7, 19));
    await mkdir(live);
    await writeFile(`${live}.diffid`, `${img.layers[0]!.diffID}\n`);
    const orphanID = sha256('gone');
    const orphan = join(t.root, 's', orphanID.slice(7, 19));
    await mkdir(orphan);
    await writeFile(`${orphan}.diffid`, `${orphanID}\n`);
    await mkdir(join(t.root, 's', 'aaaaaaaaaaaa'));

    const dry = await prune(t.store, { dryRun: true });
    expect(dry.removedBlobs).toEqual([stray.digest]);
    expect(await t.store.hasBlob(stray.digest)).toBe(true);

    const r = await prune(t.store);
    expect(r.removedBlobs).toEqual([stray.digest]);
    expect(r.freedBytes).toBe(stray.size);
    expect(r.removedSnapshots.sort()).toEqual(['aaaaaaaaaaaa', orphanID.slice(7, 19)].sort());
    expect(await t.store.hasBlob(stray.digest)).toBe(false);
    for (const d of [bb.digest, img.configDescriptor.digest, img.layers[0]!.digest, cached.digest, viaDiffID.digest]) expect(await t.store.hasBlob(d)).toBe(true);
    expect((await readdir(join(t.root, 's'))).sort()).toEqual([live.slice(-12), `${live.slice(-12)}.diffid`].sort());

    // once the name is gone, the image goes too
    await t.store.removeRef('localhost/busybox:latest');
    const r2 = await prune(t.store);
    expect(r2.removedBlobs.sort()).toEqual([bb.digest, img.configDescriptor.digest, img.layers[0]!.digest].sort());
    expect(r2.removedSnapshots).toEqual([live.slice(-12)]);
    expect(await t.store.blobForDiffID(img.layers[0]!.diffID)).toBeUndefined();
  });
});

describe('fsck', () => {
  let t: Awaited<ReturnType<typeof tempStore>>;
  beforeEach(async () => (t = await tempStore({ schemaCheck: false })));
  afterEach(async () => t.cleanup());

  it('reports a healthy store as such', async () => {
    await makeBusyboxImage(t.store);
    const r = await fsck(t.store, { leftovers: liveLeftovers });
    expect(r.problems).toEqual([]);
    expect(r.blobsChecked).toBe(3);
    expect(r.refsChecked).toBe(1);
  });

  it('detects a corrupted blob and a missing one, naming the image', async () => {
    await makeBusyboxImage(t.store, 'localhost/busybox:latest');
    const img = await t.store.getImage('localhost/busybox:latest');
    const layer = t.store.blobPath(img.layers[0]!.digest);
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(layer);
    bytes[100] = bytes[100]! ^ 0xff;
    await writeFile(layer, bytes);
    const { rm } = await import('node:fs/promises');
    await rm(t.store.blobPath(img.configDescriptor.digest));
    const r = await fsck(t.store, { leftovers: liveLeftovers });
    expect(r.problems.map((p) => [p.kind, p.digest])).toEqual(
      expect.arrayContaining([
        ['corrupt-blob', img.layers[0]!.digest],
        ['missing-blob', img.configDescriptor.digest],
      ]),
    );
    expect(r.problems.find((p) => p.kind === 'missing-blob')!.ref).toBe('localhost/busybox:latest');
  });
});
