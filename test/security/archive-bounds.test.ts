import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadArchive } from '../../src/export/load.js';
import { saveOciArchive } from '../../src/export/oci-archive.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Descriptor, Index } from '../../src/image/types.js';
import type { Store } from '../../src/store/store.js';
import { makeRandomImage, tempStore } from '../registry/helpers/images.js';
import { rejection } from '../registry/helpers/rejection.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * Archives and stores are hostile input too: `kiln load` holds an archive's
 * metadata members in memory (bounded per member and in total), and `kiln
 * save` walks an image's indexes (each document once, a bounded depth).
 */
let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir('kiln-archive-bounds-');
});
afterAll(async () => {
  await dir.cleanup();
});

/** An index listing `child` twice, stored; its descriptor. */
async function doubled(store: Store, child: Descriptor): Promise<Descriptor> {
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [child, child] };
  const { digest, size } = await store.putBytes(Buffer.from(JSON.stringify(index)));
  return { mediaType: MediaType.OCI_INDEX, digest, size };
}

describe('kiln save walks indexes once each, to a bounded depth', () => {
  it('an index DAG listing each level twice is saved with every blob once; one nested 40 deep is refused at once', async () => {
    const t = await tempStore();
    try {
      const img = await makeRandomImage(t.store, undefined, [100]);
      let top = img.descriptor;
      for (let i = 0; i < 8; i++) top = await doubled(t.store, top);
      const out = join(dir.path, 'ok-layout');
      await saveOciArchive(t.store, [{ descriptor: top }], out, { directory: true });
      // 8 indexes + manifest + config + layer, each once
      expect((await readdir(join(out, 'blobs', 'sha256'))).length).toBe(11);

      let deep = img.descriptor;
      for (let i = 0; i < 40; i++) deep = await doubled(t.store, deep);
      const e = await rejection(saveOciArchive(t.store, [{ descriptor: deep }], join(dir.path, 'deep.tar')));
      expect(e.message).toBe(`image ${deep.digest} nests indexes more than 8 deep`);
    } finally {
      await t.dispose();
    }
  });
});

describe('kiln load holds a bounded amount of metadata in memory', () => {
  it('an archive of many large .json members is refused once they pass 64 MiB in total', async () => {
    const src = join(dir.path, 'bomb');
    await mkdir(src, { recursive: true });
    const sixteen = Buffer.alloc(16 * 1024 * 1024, 0x20);
    for (let i = 0; i < 5; i++) await writeFile(join(src, `a${i}.json`), sixteen);
    await writeFile(join(src, 'manifest.json'), '[]');
    const archive = join(dir.path, 'bomb.tar.gz');
    // compressed, it is about 400 KiB: the amplification the limit is for
    execFileSync('tar', ['-C', src, '-czf', archive, '.']);
    const t = await tempStore();
    try {
      const e = await rejection(loadArchive(t.store, archive));
      expect(e.code).toBe('ARCHIVE');
      expect(e.message).toBe(`${archive}: not a readable image archive: its metadata files (manifest.json, index.json, configs) come to more than 64 MiB`);
    } finally {
      await t.dispose();
    }
  });
});

describe('documents held in memory are bounded wherever they come from', () => {
  it('a stored layer of 5 MiB named as an image (FROM sha256:<layer>) is refused without being read', async () => {
    const t = await tempStore();
    try {
      const img = await makeRandomImage(t.store, undefined, [5 * 1024 * 1024]);
      const layer = img.manifest.layers[0]!.digest;
      const read = vi.spyOn(t.store.blobs, 'readBlob');
      const e = await rejection(t.store.resolveImage(layer));
      expect(e.message).toBe(`blob ${layer} is not an image manifest or index`);
      expect(read.mock.calls.map((c) => c[0])).not.toContain(layer);
    } finally {
      await t.dispose();
    }
  });

  it('a docker archive whose config (stored as a blob member) is over 4 MiB is refused', async () => {
    const src = join(dir.path, 'bigcfg');
    await mkdir(join(src, 'blobs', 'sha256'), { recursive: true });
    const cfg = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const hex = createHash('sha256').update(cfg).digest('hex');
    await writeFile(join(src, 'blobs', 'sha256', hex), cfg);
    await writeFile(join(src, 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${hex}`, RepoTags: ['big/cfg:1'], Layers: [] }]));
    const archive = join(dir.path, 'bigcfg.tar');
    execFileSync('tar', ['-C', src, '-cf', archive, '.']);
    const t = await tempStore();
    try {
      const e = await rejection(loadArchive(t.store, archive));
      expect(e.code).toBe('ARCHIVE');
      expect(e.message).toBe(`config blobs/sha256/${hex} is ${cfg.length} bytes, over kiln's limit of 4 MiB for an image config`);
    } finally {
      await t.dispose();
    }
  });
});

describe('kiln load does each piece of work once, however often an archive lists it', () => {
  it('a docker archive listing one layer 20 times decompresses it once', async () => {
    const src = join(dir.path, 'repeated');
    await mkdir(join(src, 'l'), { recursive: true });
    await writeFile(join(src, 'l', 'f'), Buffer.alloc(1024 * 1024));
    const layerTar = execFileSync('tar', ['-C', join(src, 'l'), '-cf', '-', 'f'], { maxBuffer: 8 << 20 });
    const diffID = `sha256:${createHash('sha256').update(layerTar).digest('hex')}`;
    const gz = execFileSync('gzip', ['-c'], { input: layerTar, maxBuffer: 8 << 20 });
    const hex = createHash('sha256').update(gz).digest('hex');
    await mkdir(join(src, 'a', 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(src, 'a', 'blobs', 'sha256', hex), gz);
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: Array(20).fill(diffID) } }));
    const cfgHex = createHash('sha256').update(config).digest('hex');
    await writeFile(join(src, 'a', 'blobs', 'sha256', cfgHex), config);
    await writeFile(join(src, 'a', 'manifest.json'), JSON.stringify([{ Config: `blobs/sha256/${cfgHex}`, RepoTags: ['rep/eated:1'], Layers: Array(20).fill(`blobs/sha256/${hex}`) }]));
    const archive = join(dir.path, 'repeated.tar');
    execFileSync('tar', ['-C', join(src, 'a'), '-cf', archive, '.']);
    const t = await tempStore();
    try {
      const open = vi.spyOn(t.store, 'openBlob');
      const [loaded] = await loadArchive(t.store, archive);
      expect(loaded!.refs).toEqual(['rep/eated:1']);
      expect((await t.store.getImage('rep/eated:1')).layers).toHaveLength(20);
      expect(open.mock.calls.filter((c) => c[0] === `sha256:${hex}`)).toHaveLength(1);
    } finally {
      await t.dispose();
    }
  });

  it('an OCI archive listing one manifest under five names reads it once; more than 4096 images are refused', async () => {
    const t = await tempStore();
    const u = await tempStore();
    try {
      const img = await makeRandomImage(t.store, undefined, [100]);
      const out = join(dir.path, 'five');
      await saveOciArchive(t.store, [{ descriptor: img.descriptor }], out, { directory: true });
      const entry = (n: number): Descriptor => ({ ...img.descriptor, annotations: { 'io.containerd.image.name': `localhost/five/n${n}:1` } });
      await writeFile(join(out, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [1, 2, 3, 4, 5].map(entry) }));
      const archive = join(dir.path, 'five.tar');
      execFileSync('tar', ['-C', out, '-cf', archive, '.']);
      const read = vi.spyOn(u.store, 'imageFromDescriptor');
      const loaded = await loadArchive(u.store, archive);
      expect(loaded.flatMap((l) => l.refs)).toEqual([1, 2, 3, 4, 5].map((n) => `localhost/five/n${n}:1`));
      expect(read.mock.calls.filter((c) => c[0].digest === img.descriptor.digest)).toHaveLength(1);

      await writeFile(join(out, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: Array(4097).fill(img.descriptor) }));
      execFileSync('tar', ['-C', out, '-cf', archive, '.']);
      const e = await rejection(loadArchive(u.store, archive));
      expect(e.code).toBe('ARCHIVE');
      expect(e.message).toBe("index.json lists 4097 images, over kiln's limit of 4096 for one archive");
    } finally {
      await t.dispose();
      await u.dispose();
    }
  });
});
