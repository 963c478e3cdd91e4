import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { pull, push, RegistryClient, parseReference, type RegistryEvent } from '../../src/registry/index.js';
import { FaultProxy } from './helpers/fault-proxy.js';
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

describe('tags list', () => {
  it('follows Link rel="next" pages and returns every tag', async () => {
    const s = await tempStore();
    const client = new RegistryClient();
    try {
      const ref = `${reg.anon}/${uniqueRepo()}:t0`;
      await makeRandomImage(s.store, parseReference(ref).toString(), [10]);
      await push(s.store, ref, undefined, { tags: ['t1', 't2', 't3', 't4'] });
      const proxy = await FaultProxy.start(reg.anon);
      // Distribution 2.8 ignores n=; the proxy paginates the way the spec describes, Link header and all
      proxy.on('GET', /\/tags\/list/, async (ctx) => {
        const url = new URL(ctx.req.url!, 'http://x');
        const full = await ctx.forward({ url: url.pathname });
        const all = ((JSON.parse(full.body.toString()) as { tags: string[] }).tags).sort();
        const n = Number(url.searchParams.get('n'));
        const last = url.searchParams.get('last');
        const rest = last ? all.filter((t) => t > last) : all;
        const page = rest.slice(0, n);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (rest.length > n) headers.link = `<${url.pathname}?n=${n}&last=${page[page.length - 1]}>; rel="next"`;
        ctx.res.writeHead(200, headers);
        ctx.res.end(JSON.stringify({ name: 'x', tags: page }));
      }, 3);
      try {
        const tags = await client.listTags(parseReference(`${proxy.addr}/${parseReference(ref).repository}`), { pageSize: 2 });
        expect(tags.sort()).toEqual(['t0', 't1', 't2', 't3', 't4']);
        expect(proxy.seen.filter((r) => r.url.includes('/tags/list')).length).toBe(3);
      } finally {
        await proxy.close();
      }
      expect(await client.listTags(parseReference(`${reg.anon}/${uniqueRepo()}`))).toEqual([]);
    } finally {
      await client.close();
      await s.dispose();
    }
  });
});
