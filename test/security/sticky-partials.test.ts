import { open, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { pull, push } from '../../src/registry/index.js';
import { tryFlock } from '../../src/store/flock.js';
import { fsck } from '../../src/store/fsck.js';
import { liveLeftovers } from '../../src/sandbox/scratch.js';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { makeRandomImage, tempStore, uniqueRepo, type TestImage } from '../registry/helpers/images.js';
import { useProxiedStore } from '../registry/helpers/proxied-store.js';
import type { Digest } from '../../src/image/digest.js';

/**
 * What a killed pull leaves in tmp/partial/ must never block that image:
 * a partial that already holds every byte is verified and published without
 * a request (or, when wrong, downloaded again), a registry that refuses the
 * resume range (416) gets a download from byte 0, and prune removes partials
 * no running pull holds.
 */
const reg = inject('registry');
const SIZE = 5_000_000;

describe('partial downloads left by a killed pull', () => {
  const src = useProxiedStore(reg.anon);
  let repo: string;
  let img: TestImage;
  let layer: string;
  const blobGets = () => src.proxy.seen.filter((s) => s.method === 'GET' && s.url.endsWith(`/blobs/${layer}`));

  beforeAll(async () => {
    await rebuildIfStale(['store/gc', 'store/partial-blob', 'cli/commands/prune']);
    repo = uniqueRepo('partials');
    img = await makeRandomImage(src.store, `${reg.anon}/${repo}:1`, [SIZE]);
    layer = img.manifest.layers[0]!.digest;
    await push(src.store, `${reg.anon}/${repo}:1`);
  });

  async function withPartial(bytes: Buffer, fn: (dest: Awaited<ReturnType<typeof tempStore>>) => Promise<void>): Promise<void> {
    const dest = await tempStore();
    try {
      await writeFile(join(dest.root, 'tmp', 'partial', layer.slice(7)), bytes);
      src.proxy.clear();
      await fn(dest);
      expect((await fsck(dest.store, { leftovers: liveLeftovers })).problems).toEqual([]);
      expect(await readdir(join(dest.root, 'tmp', 'partial'))).toEqual([]);
    } finally {
      await dest.dispose();
    }
  }

  it('a partial holding every byte is published without downloading it again', async () => {
    await withPartial(img.layers[0]!, async (dest) => {
      const r = await pull(dest.store, `${src.proxy.addr}/${repo}:1`);
      expect(r.manifestDigest).toBe(img.descriptor.digest);
      expect(blobGets()).toEqual([]);
      expect((await dest.store.readBlob(layer as Digest)).equals(img.layers[0]!)).toBe(true);
    });
  });

  it('a complete partial with wrong bytes is downloaded again from byte 0', async () => {
    const wrong = Buffer.from(img.layers[0]!);
    wrong[123] = wrong[123]! ^ 0xff;
    await withPartial(wrong, async (dest) => {
      await pull(dest.store, `${src.proxy.addr}/${repo}:1`);
      expect(blobGets().map((g) => g.headers.range)).toEqual([undefined]);
      expect((await dest.store.readBlob(layer as Digest)).equals(img.layers[0]!)).toBe(true);
    });
  });

  it('a registry refusing the resume range (416) gets a download from byte 0', async () => {
    await withPartial(img.layers[0]!.subarray(0, 2_000_000), async (dest) => {
      src.proxy.on('GET', new RegExp(`/blobs/${layer}$`), ({ res }) => {
        res.writeHead(416, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"RANGE_INVALID","message":"invalid range"}]}');
      });
      const r = await pull(dest.store, `${src.proxy.addr}/${repo}:1`);
      expect(r.manifestDigest).toBe(img.descriptor.digest);
      expect(blobGets().map((g) => g.headers.range)).toEqual(['bytes=2000000-4999999', undefined]);
      expect((await dest.store.readBlob(layer as Digest)).equals(img.layers[0]!)).toBe(true);
    });
  });

  it('prune removes partials, except one a running download holds', async () => {
    const dest = await tempStore();
    try {
      const dir = join(dest.root, 'tmp', 'partial');
      const idle = 'a'.repeat(64);
      const held = 'b'.repeat(64);
      await writeFile(join(dir, idle), Buffer.alloc(1000));
      await writeFile(join(dir, held), Buffer.alloc(1000));
      // another process downloading: it holds the partial's flock (a second open file description here excludes the same way)
      const fh = await open(join(dir, held), 'r+');
      try {
        expect(tryFlock(fh.fd, 'exclusive')).toBe(true);
        await dest.store.close();
        const r = await runKiln(['--root', dest.root, 'prune']);
        expect(r.code).toBe(0);
        expect(r.stdout).toContain(`Deleted partial download sha256:${idle}`);
        expect(await readdir(dir)).toEqual([held]);
      } finally {
        await fh.close();
      }
      const again = await runKiln(['--root', dest.root, 'prune', '--all', '--json']);
      expect(JSON.parse(again.stdout).removedPartials).toEqual([held]);
      expect(await readdir(dir)).toEqual([]);
    } finally {
      await dest.dispose();
    }
  });
});
