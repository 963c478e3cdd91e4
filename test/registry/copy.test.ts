import { describe, expect, inject, it } from 'vitest';
import { copy, parseReference, push, RegistryClient, staticCredentialSource } from '../../src/registry/index.js';
import { makeRandomImage, makeRandomIndex, uniqueRepo } from './helpers/images.js';
import { useProxiedStore } from './helpers/proxied-store.js';

const reg = inject('registry');

describe('copy (registry to registry, streaming)', () => {
  const s = useProxiedStore(reg.anon);

  it('within one registry mounts every blob instead of moving bytes', async () => {
    const src = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, src, [40_000, 50_000]);
    await push(s.store, src);
    s.proxy.clear();
    const dest = `${s.proxy.addr}/${uniqueRepo()}:copied`;
    const r = await copy(src, dest);
    expect(r.digest).toBe(img.descriptor.digest);
    expect(s.proxy.seen.filter((q) => q.method === 'POST' && q.url.includes('mount=')).length).toBe(3);
    expect(s.proxy.seen.filter((q) => q.method === 'GET' && q.url.includes('/blobs/'))).toEqual([]);
  });

  it('across registries streams blobs (ranged reads per chunk) with identical digests, into an authenticated registry', async () => {
    const src = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, src, [300_000, 1000]);
    await push(s.store, src);
    s.proxy.clear();
    const dest = `${reg.basic}/${uniqueRepo()}:x`;
    const credentials = staticCredentialSource({ [reg.basic]: { username: reg.user, password: reg.password } });
    const r = await copy(src, dest, { credentials, chunkSize: 64 * 1024 });
    expect(r.digest).toBe(img.descriptor.digest);
    expect(s.proxy.seen.filter((q) => q.method === 'GET' && q.headers.range).length).toBeGreaterThanOrEqual(5);
    const client = new RegistryClient({ credentials });
    try {
      expect((await client.headManifest(parseReference(dest)))?.digest).toBe(img.descriptor.digest);
      expect(await client.blobSize(parseReference(dest), img.manifest.layers[0]!.digest)).toBe(300_000);
    } finally {
      await client.close();
    }
  });

  it('a source that ignores Range still yields exactly each chunk', async () => {
    const src = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, src, [200_000]);
    await push(s.store, src);
    s.proxy.clear();
    s.proxy.on('GET', /\/blobs\/sha256:/, async (ctx) => {
      const { range: _r, ...headers } = ctx.req.headers;
      ctx.reply(await ctx.forward({ headers }));
    }, 100);
    const dest = `${reg.anon}/${uniqueRepo()}:1`;
    const r = await copy(src, dest, { chunkSize: 64 * 1024 });
    expect(r.digest).toBe(img.descriptor.digest);
    s.proxy.clear();
  });

  it('an index: one platform by default, the whole index with allPlatforms', async () => {
    const src = `${reg.anon}/${uniqueRepo()}:multi`;
    const { descriptor, children } = await makeRandomIndex(s.store, parseReference(src).toString());
    await push(s.store, src);
    const one = await copy(src, `${reg.anon}/${uniqueRepo()}:one`, { platform: 'linux/arm64' });
    expect(one.digest).toBe(children[1]!.descriptor.digest);
    const allDest = `${reg.anon}/${uniqueRepo()}:all`;
    const all = await copy(src, allDest, { allPlatforms: true });
    expect(all.digest).toBe(descriptor.digest);
    const client = new RegistryClient();
    try {
      expect((await client.headManifest(parseReference(allDest)))?.digest).toBe(descriptor.digest);
      for (const c of children) expect((await client.headManifest(parseReference(allDest).withDigest(c.descriptor.digest)))?.digest).toBe(c.descriptor.digest);
    } finally {
      await client.close();
    }
  });
});
