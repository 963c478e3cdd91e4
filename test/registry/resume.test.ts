import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { pull, push } from '../../src/registry/index.js';
import { KilnError } from '../../src/errors/index.js';
import { resetAfter } from './helpers/fault-proxy.js';
import { makeRandomImage, tempStore, uniqueRepo, type TestImage } from './helpers/images.js';
import { useProxiedStore } from './helpers/proxied-store.js';

/**
 * A pull that dies part-way (here: every attempt is cut, so the pull gives
 * up) leaves its bytes on disk; the next pull — a new client, as a new
 * process would be — continues from there with Range instead of starting over.
 */
const reg = inject('registry');

describe('resuming an interrupted pull in a later one', () => {
  const src = useProxiedStore(reg.anon);
  let repo: string;
  let img: TestImage;

  beforeAll(async () => {
    repo = uniqueRepo('resume');
    img = await makeRandomImage(src.store, `${reg.anon}/${repo}:1`, [6_000_000]);
    await push(src.store, `${reg.anon}/${repo}:1`);
  });

  it('keeps the received bytes and asks only for the rest', async () => {
    const layer = img.manifest.layers[0]!.digest;
    const big = new RegExp(`/blobs/${layer}$`);
    const dest = await tempStore();
    try {
      src.proxy.on('GET', big, async (ctx) => resetAfter(ctx, await ctx.forward(), 2_500_000), 5);
      const failed = await pull(dest.store, `${src.proxy.addr}/${repo}:1`, { retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } }).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(KilnError);
      expect(await dest.store.hasBlob(layer)).toBe(false);
      const partialDir = join(dest.root, 'tmp', 'partial');
      const kept = (await stat(join(partialDir, layer.slice(7)))).size;
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(6_000_000);
      src.proxy.clear();

      const r = await pull(dest.store, `${src.proxy.addr}/${repo}:1`);
      expect(r.manifestDigest).toBe(img.descriptor.digest);
      expect((await dest.store.readBlob(layer)).equals(img.layers[0]!)).toBe(true);
      const gets = src.proxy.seen.filter((s) => s.method === 'GET' && big.test(s.url));
      expect(gets.at(-1)!.headers.range).toBe(`bytes=${kept}-5999999`);
      expect(await readdir(partialDir)).toEqual([]);
    } finally {
      await dest.dispose();
    }
  });
});
