import { lstat, readdir, readFile, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extractLayer } from '../../src/layer/extract.js';
import { writeLayer } from '../../src/layer/write-layer.js';
import { getXattr } from '../../src/layer/xattr.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { LayerExtractor } from '../../src/store/snapshots.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { tempStore } from '../helpers/temp-dir.js';

/**
 * Snapshots through the store with the layer module's extractor, wrapped only
 * to count how many extractions really ran.
 */
let extractions = 0;
const counting: LayerExtractor = (compressed, mediaType, dest) => {
  extractions++;
  return extractLayer(compressed, mediaType, dest);
};

let t: Awaited<ReturnType<typeof tempStore>>;
beforeAll(async () => {
  t = await tempStore({ extractLayer: counting });
  await makeBusyboxImage(t.store, 'localhost/busybox:latest');
});
afterAll(async () => {
  await t.cleanup();
});

describe('snapshots', () => {
  it('extracts a layer once into s/<12 hex>, shared by concurrent callers', async () => {
    const img = await t.store.getImage('localhost/busybox:latest');
    const layer = img.layers[0]!;
    extractions = 0;
    const paths = await Promise.all([t.store.snapshotPath(layer), t.store.snapshotPath(layer), t.store.snapshotPath(layer.diffID)]);
    expect(new Set(paths).size).toBe(1);
    expect(extractions).toBe(1);
    const p = paths[0];
    expect(p).toBe(join(t.root, 's', layer.diffID.slice(7, 19)));
    expect(await readlink(join(p, 'bin', 'sh'))).toBe('busybox');
    expect(await readFile(join(p, 'etc', 'passwd'), 'utf8')).toContain('app:x:1000:1000');
    expect((await stat(join(p, 'tmp'))).mode & 0o7777).toBe(0o1777);
    expect((await lstat(join(p, 'home', 'app'))).uid).toBe(1000);
    expect((await readFile(`${p}.diffid`, 'utf8')).trim()).toBe(layer.diffID);
    // later calls find it ready
    expect(await t.store.snapshotPath(layer)).toBe(p);
    expect(extractions).toBe(1);
    expect(await readdir(join(t.root, 'tmp'))).toEqual(['partial']);
  });

  it('an interrupted extraction (directory without marker) is redone', async () => {
    const img = await t.store.getImage('localhost/busybox:latest');
    const layer = img.layers[0]!;
    const p = await t.store.snapshotPath(layer);
    const { rm } = await import('node:fs/promises');
    await rm(`${p}.diffid`);
    await rm(join(p, 'etc'), { recursive: true });
    extractions = 0;
    expect(await t.store.snapshotPath(layer)).toBe(p);
    expect(extractions).toBe(1);
    expect(await readFile(join(p, 'etc', 'group'), 'utf8')).toContain('app:x:1000:');
  });

  it('refuses a layer whose content does not match its diffID, publishing nothing', async () => {
    const img = await t.store.getImage('localhost/busybox:latest');
    const wrongDiffID = sha256('not this layer');
    const err = await t.store.snapshotPath({ descriptor: img.layers[0]!.descriptor, diffID: wrongDiffID }).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('DIGEST_MISMATCH');
    expect(await readdir(join(t.root, 's'))).not.toContain(wrongDiffID.slice(7, 19));
    expect(await readdir(join(t.root, 'tmp'))).toEqual(['partial']);
  });

  it('an unknown diffID is NOT_FOUND', async () => {
    const err = await t.store.snapshotPath(sha256('unknown')).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('NOT_FOUND');
  });

  it('an uncompressed layer blob is its own diffID', async () => {
    const img = await t.store.getImage('localhost/busybox:latest');
    const chunks: Buffer[] = [];
    for await (const c of img.layers[0]!.openUncompressed()) chunks.push(c as Buffer);
    const { digest, size } = await t.store.putBytes(Buffer.concat(chunks));
    expect(digest).toBe(img.layers[0]!.diffID);
    expect(size).toBeGreaterThan(0);
    expect(await t.store.blobForDiffID(digest)).toMatchObject({ digest: img.layers[0]!.digest, mediaType: MediaType.OCI_LAYER_GZIP });
  });

  it('turns OCI whiteouts into overlay whiteouts', async () => {
    const e = (path: string, type: 'file' | 'directory', content = '') => ({
      path,
      type,
      mode: type === 'directory' ? 0o755 : 0o644,
      uid: 0,
      gid: 0,
      mtime: 1704067200,
      ...(type === 'file' ? { size: content.length, open: () => Readable.from([Buffer.from(content)]) } : {}),
    });
    const layer = await writeLayer([e('etc', 'directory'), e('etc/.wh.passwd', 'file'), e('home', 'directory'), e('home/.wh..wh..opq', 'file'), e('home/new', 'file', 'x')], t.store);
    const p = await t.store.snapshotPath({ descriptor: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, diffID: layer.diffID });
    const wh = await lstat(join(p, 'etc', 'passwd'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(getXattr(join(p, 'home'), 'trusted.overlay.opaque')?.toString()).toBe('y');
    expect(await readFile(join(p, 'home', 'new'), 'utf8')).toBe('x');
    expect(await readdir(join(p, 'etc'))).toEqual(['passwd']);
    // the store now knows the layer by its diffID alone
    expect(await t.store.snapshotPath(layer.diffID)).toBe(p);
  });
});
