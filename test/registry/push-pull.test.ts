import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pull, push, RegistryClient, parseReference, type RegistryEvent } from '../../src/registry/index.js';
import { makeRandomImage, makeRandomIndex, tempStore, uniqueRepo } from './helpers/images.js';

const reg = inject('registry');

describe('push and pull against the anonymous registry', () => {
  let src: Awaited<ReturnType<typeof tempStore>>;
  let dst: Awaited<ReturnType<typeof tempStore>>;
  beforeAll(async () => {
    src = await tempStore();
    dst = await tempStore();
  });
  afterAll(async () => {
    await src.dispose();
    await dst.dispose();
  });

  it('round-trips an image with identical digests and tags it normalised', async () => {
    const ref = `${reg.anon}/${uniqueRepo()}:v1`;
    const img = await makeRandomImage(src.store, parseReference(ref).toString(), [10_000, 200_000, 0]);
    const events: RegistryEvent[] = [];
    const pushed = await push(src.store, ref, undefined, { onEvent: (e) => events.push(e) });
    expect(pushed.digest).toBe(img.descriptor.digest);
    expect(events.some((e) => e.type === 'push-progress' && e.phase === 'done')).toBe(true);

    const pulled = await pull(dst.store, ref, { platform: 'linux/amd64', onEvent: (e) => events.push(e) });
    expect(pulled.manifestDigest).toBe(img.descriptor.digest);
    expect(await dst.store.resolve(parseReference(ref).toString())).toMatchObject({ digest: img.descriptor.digest });
    for (const [i, l] of img.layers.entries()) {
      expect((await dst.store.readBlob(img.manifest.layers[i]!.digest)).equals(l)).toBe(true);
    }
    expect(pulled.image?.layers.length).toBe(3);
    const origins = await dst.store.blobOrigins(img.manifest.layers[0]!.digest);
    expect(origins).toContainEqual({ registry: reg.anon, repository: parseReference(ref).repository });
  });

  it('second push finds every blob already there (HEAD) and pushes extra tags', async () => {
    const ref = `${reg.anon}/${uniqueRepo()}:a`;
    await makeRandomImage(src.store, parseReference(ref).toString(), [5000]);
    await push(src.store, ref);
    const events: RegistryEvent[] = [];
    const r = await push(src.store, ref, undefined, { tags: ['b', 'c'], onEvent: (e) => events.push(e) });
    expect(r.tags).toEqual(['a', 'b', 'c']);
    const phases = events.filter((e) => e.type === 'push-progress' && e.phase !== 'waiting').map((e) => (e as { phase: string }).phase);
    expect(phases.every((p) => p === 'exists')).toBe(true);
    const client = new RegistryClient();
    try {
      for (const t of ['a', 'b', 'c']) expect((await client.headManifest(parseReference(ref).withTag(t)))?.digest).toBe(r.digest);
    } finally {
      await client.close();
    }
  });

  it('pushes an index children first and pulls one platform or all', async () => {
    const ref = `${reg.anon}/${uniqueRepo()}:multi`;
    const { descriptor, children } = await makeRandomIndex(src.store, parseReference(ref).toString());
    const r = await push(src.store, ref);
    expect(r.digest).toBe(descriptor.digest);

    const one = await pull(dst.store, ref, { platform: 'linux/arm64' });
    expect(one.indexDigest).toBe(descriptor.digest);
    expect(one.manifestDigest).toBe(children[1]!.descriptor.digest);
    expect(one.descriptor.platform).toEqual({ architecture: 'arm64', os: 'linux' });

    const fresh = await tempStore();
    try {
      const all = await pull(fresh.store, ref, { allPlatforms: true });
      expect(all.descriptor.digest).toBe(descriptor.digest);
      for (const c of children) expect(await fresh.store.hasBlob(c.manifest.layers[0]!.digest)).toBe(true);
    } finally {
      await fresh.dispose();
    }
  });
});
