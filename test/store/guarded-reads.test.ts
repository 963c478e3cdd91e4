import { execFileSync } from 'node:child_process';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreCacheIndex } from '../../src/cache/records.js';
import { StoreCorruptError } from '../../src/errors/index.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { fsck } from '../../src/store/fsck.js';
import { prune } from '../../src/store/gc.js';
import { storeUsage } from '../../src/store/usage.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { tempStore } from '../helpers/temp-dir.js';

/** Every path under `root` with its size and mtime: equal listings mean nothing was written. */
function treeState(root: string): string {
  return execFileSync('find', [root, '-printf', '%P %s %T@ %m\n'], { encoding: 'utf8' }).split('\n').sort().join('\n');
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

describe('store reads', () => {
  let t: Awaited<ReturnType<typeof tempStore>>;
  // these tests damage their store on purpose
  beforeEach(async () => (t = await tempStore({ schemaCheck: false })));
  afterEach(async () => t.cleanup());

  it('reading images, names, metadata, usage and checks writes nothing', async () => {
    const desc = await makeBusyboxImage(t.store, 'localhost/busybox:latest');
    const img = await t.store.getImage('localhost/busybox:latest');
    const layer = img.layers[0]!;
    // the snapshot exists, so df has a size to measure (and, before, to remember)
    await t.store.snapshotPath(layer);
    // a store whose diffID index was lost: reading an image used to record it again
    await rm(t.store.layout.diffidFile(layer.diffID));
    const before = treeState(t.root);

    await t.store.getImage('localhost/busybox:latest');
    await t.store.getImage(desc.digest);
    await t.store.getImage(desc.digest.slice(7, 19));
    await t.store.imageFromDescriptor(desc);
    await t.store.resolveImage('localhost/busybox:latest');
    await t.store.listRefs();
    await t.store.listEntries();
    expect(await t.store.blobsForDiffID(layer.diffID)).toEqual([]);
    await t.store.listDiffIDs();
    await t.store.blobOrigins(layer.digest);
    await t.store.readBlob(desc.digest);
    const usage = await storeUsage(t.store, { verbose: true });
    expect(usage.snapshots.count).toBe(1);
    expect((await fsck(t.store)).problems).toEqual([]);
    await prune(t.store, { all: true, dryRun: true });

    expect(treeState(t.root)).toBe(before);
    // the writers record what the readers no longer do
    await t.store.recordLayers(img);
    expect(await t.store.blobForDiffID(layer.diffID)).toMatchObject({ digest: layer.digest });
  });

  it('a damaged index.json is a typed error naming it; fsck reports it', async () => {
    const desc = await makeBusyboxImage(t.store, 'localhost/busybox:latest');
    for (const text of ['{"schemaVersion":2,"manifests":[', 'null', '{"manifests":{"length":1}}', '{"manifests":[{"mediaType":"x","digest":"sha256:../../etc","size":1}]}', '{"manifests":[null]}']) {
      await writeFile(t.store.layout.index, text);
      const e = await rejection(t.store.listRefs());
      expect(e).toBeInstanceOf(StoreCorruptError);
      expect((e as StoreCorruptError).code).toBe('STORE');
      expect((e as StoreCorruptError).file).toBe(t.store.layout.index);
      expect((e as Error).message).toContain(t.store.layout.index);
      await expect(t.store.getImage('localhost/busybox:latest')).rejects.toBeInstanceOf(StoreCorruptError);
      // a write does not build on a damaged index either
      await expect(t.store.setRef('localhost/x:1', desc)).rejects.toBeInstanceOf(StoreCorruptError);
      expect(await readFile(t.store.layout.index, 'utf8')).toBe(text);
      const report = await fsck(t.store);
      expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'corrupt-metadata', message: expect.stringContaining(t.store.layout.index) }));
    }
  });

  it('a "__proto__" key in index.json, a metadata file or a manifest never becomes a prototype', async () => {
    const desc = await makeBusyboxImage(t.store, 'localhost/busybox:latest');
    const index = JSON.parse(await readFile(t.store.layout.index, 'utf8')) as { manifests: Array<{ annotations: Record<string, unknown> }> };
    const hostile = JSON.stringify(index).replace('"annotations":{', '"annotations":{"__proto__":{"polluted":"yes"},');
    expect(hostile).toContain('__proto__');
    await writeFile(t.store.layout.index, hostile);
    const [entry] = await t.store.listEntries();
    expect(entry!.ref).toBe('localhost/busybox:latest');
    // rewriting the index spreads the annotations: still no prototype borrowed
    await t.store.setRef('localhost/busybox:again', desc);
    for (const e of await t.store.listEntries()) {
      expect(Object.getPrototypeOf(e.descriptor)).toBe(Object.prototype);
      expect((e.descriptor as unknown as { polluted?: string }).polluted).toBeUndefined();
    }
    expect(await readFile(t.store.layout.index, 'utf8')).not.toContain('__proto__');
    expect(({} as { polluted?: string }).polluted).toBeUndefined();

    // an origins file that names a prototype
    const blob = (await t.store.getImage(desc.digest)).layers[0]!.digest;
    await writeFile(t.store.layout.originFile(blob), '[{"registry":"r","repository":"p","__proto__":{"polluted":"yes"}}]');
    const [origin] = await t.store.blobOrigins(blob);
    expect(origin).toEqual({ registry: 'r', repository: 'p' });
    expect((origin as { polluted?: string }).polluted).toBeUndefined();
  });

  it('a damaged diffID or origins record is a typed error naming it; writers repair it, fsck reports it, prune removes it', async () => {
    const desc = await makeBusyboxImage(t.store, 'localhost/busybox:latest');
    const layer = (await t.store.getImage(desc.digest)).layers[0]!;
    const file = t.store.layout.diffidFile(layer.diffID);
    for (const text of ['{', '"x"', '[{"mediaType":"m","digest":"sha256:../../x","size":1}]', '[{"mediaType":"m","digest":"' + layer.digest + '","size":-1}]']) {
      await writeFile(file, text);
      const e = await rejection(t.store.blobsForDiffID(layer.diffID));
      expect(e).toBeInstanceOf(StoreCorruptError);
      expect((e as StoreCorruptError).file).toBe(file);
      await expect(t.store.snapshotPath(layer.diffID)).rejects.toBeInstanceOf(StoreCorruptError);
      expect((await fsck(t.store)).problems).toEqual([expect.objectContaining({ kind: 'corrupt-metadata', message: expect.stringContaining(file) })]);
    }
    // the writer knows the pair it records: it replaces the damaged file
    await t.store.recordDiffID(layer.diffID, layer.descriptor);
    expect(await t.store.blobsForDiffID(layer.diffID)).toEqual([layer.descriptor]);

    const origins = t.store.layout.originFile(layer.digest);
    await writeFile(origins, '{"registry":"r"}');
    expect(await rejection(t.store.blobOrigins(layer.digest))).toMatchObject({ file: origins, code: 'STORE' });
    await t.store.recordBlobOrigin(layer.digest, 'localhost:5000', 'a/b');
    expect(await t.store.blobOrigins(layer.digest)).toEqual([{ registry: 'localhost:5000', repository: 'a/b' }]);

    // garbage collection drops a damaged diffID record (an index kiln rebuilds) and keeps the rest
    await writeFile(file, 'not json');
    await prune(t.store, {});
    expect(await readdir(t.store.layout.diffids)).not.toContain(file.split('/').pop());
    expect((await fsck(t.store)).problems).toEqual([]);
    expect((await t.store.getImage('localhost/busybox:latest')).descriptor.digest).toBe(desc.digest);
  });

  it('a hostile manifest or config blob is a typed error naming the blob, not a crash', async () => {
    const config = await t.store.putJSON({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: 'sha256:abc' } }, MediaType.OCI_CONFIG);
    const cases: unknown[] = [
      { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: { length: 2 } },
      { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: null, layers: [] },
      { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [{ mediaType: MediaType.OCI_LAYER, digest: 'sha256:../../../etc/passwd', size: 1 }] },
      { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [] },
    ];
    for (const [i, doc] of cases.entries()) {
      const m = await t.store.putJSON(doc, MediaType.OCI_MANIFEST);
      await t.store.setRef(`localhost/hostile:${i}`, m);
      const e = await rejection(t.store.getImage(`localhost/hostile:${i}`));
      expect(e).toBeInstanceOf(StoreCorruptError);
      expect((e as StoreCorruptError).file).toMatch(/^blob sha256:[a-f0-9]{64}$/);
      const bad = (await fsck(t.store)).problems.filter((p) => p.ref === `localhost/hostile:${i}`);
      expect(bad).toEqual([expect.objectContaining({ kind: 'bad-document' })]);
    }
    // an index whose manifests are not descriptors
    const ix = await t.store.putJSON({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [{ digest: 42 }] }, MediaType.OCI_INDEX);
    await t.store.setRef('localhost/hostile:index', ix);
    await expect(t.store.getImage('localhost/hostile:index')).rejects.toBeInstanceOf(StoreCorruptError);
  });

  it('a damaged build-cache record is a miss, not a crash', async () => {
    const index = new StoreCacheIndex(t.store.layout, (d) => t.store.hasBlob(d));
    const key = sha256('a key');
    const file = join(t.store.layout.cacheRecords, `${key.slice(7)}.json`);
    await index.put({ version: 1, key, history: { created_by: 'RUN x' } }, 'Dockerfile:1', { parent: sha256('p'), op: 'x', env: {}, inputs: [] });
    expect(await index.get(key)).toMatchObject({ key });
    for (const text of ['null', '{', '{"version":1,"key":"' + key + '","layer":{"digest":5}}', '{"version":1,"key":"' + key + '","variants":"x"}']) {
      await writeFile(file, text);
      expect(await index.get(key)).toBeUndefined();
    }
    await writeFile(join(t.store.layout.cacheSlots, `${Buffer.from('Dockerfile:1').toString('base64url')}.json`), 'null');
    expect(await index.explain('Dockerfile:1', { parent: sha256('p'), op: 'x', env: {}, inputs: [] })).toBe('no earlier build of this step');
    // the snapshot-size memo damaged: df measures again
    await writeFile(t.store.layout.snapshotSizes, 'null');
    expect((await storeUsage(t.store)).snapshots.count).toBe(0);
  });
});
