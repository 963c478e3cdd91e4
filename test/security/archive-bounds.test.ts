import { execFileSync } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
