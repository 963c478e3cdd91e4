import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExecutors } from '../../src/builder/executors.js';
import type { LayerRef } from '../../src/image/image.js';
import { writeLayer } from '../../src/layer/write-layer.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { tempStore } from '../helpers/temp-dir.js';
import { fileEntry } from '../layer/helpers.js';

let t: Awaited<ReturnType<typeof tempStore>>;
let ctxDir: string;
const layers: LayerRef[] = [];
beforeAll(async () => {
  t = await tempStore();
  ctxDir = await mkdtemp(join(tmpdir(), 'kiln-ctx-'));
  await makeBusyboxImage(t.store, 'localhost/busybox:latest');
  layers.push(...(await t.store.getImage('localhost/busybox:latest')).layers.map((l) => ({ descriptor: l.descriptor, diffID: l.diffID })));
  for (let i = 0; i < 4; i++) {
    const w = await writeLayer([fileEntry(`f${i}`, `layer ${i}\n`)], t.store);
    layers.push({ descriptor: { mediaType: w.mediaType, digest: w.digest, size: w.size }, diffID: w.diffID });
  }
});
afterAll(async () => {
  await rm(ctxDir, { recursive: true, force: true });
  await t.cleanup();
});

describe("a build's lower layers", () => {
  it('are looked up once per build, not once per step that mounts them (no O(steps²) reads), and a failed lookup is tried again', async () => {
    const ensured: string[] = [];
    const looked: string[] = [];
    const store = t.store;
    const original = store.snapshotPath.bind(store);
    let failNext = true;
    store.snapshotPath = async (l) => {
      const ref = l as LayerRef;
      looked.push(ref.diffID);
      if (ref.diffID === layers[4]!.diffID && failNext) {
        failNext = false;
        throw new Error('blob not fetched yet');
      }
      return original(ref);
    };
    const ex = await createExecutors({
      store, contextDir: ctxDir, dockerfilePath: undefined, layer: {}, sourceDateEpoch: undefined, emit: () => undefined,
      policy: { network: 'none', entitlements: new Set(), secrets: [], ssh: [] },
      ensureLayers: async (ls) => {
        ensured.push(...ls.map((l) => l.diffID));
      },
    });
    try {
      // each step mounts every layer below it, as the RUNs of one stage do
      const first = await ex.lowerdirs(layers.slice(0, 3));
      expect(first).toEqual((await Promise.all(layers.slice(0, 3).map((l) => original(l)))).reverse());
      await ex.lowerdirs(layers.slice(0, 4));
      await expect(ex.lowerdirs(layers.slice(0, 5))).rejects.toThrow('blob not fetched yet');
      const all = await ex.lowerdirs(layers);
      expect(all).toHaveLength(5);
      await ex.lowerdirs(layers);
      // every layer once, but the one that failed: twice
      expect(looked.sort()).toEqual([...layers.map((l) => l.diffID), layers[4]!.diffID].sort());
      expect(ensured.sort()).toEqual([...layers.map((l) => l.diffID), layers[4]!.diffID].sort());
    } finally {
      store.snapshotPath = original;
      await ex.close();
    }
  });
});
