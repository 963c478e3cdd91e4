import { copyFileSync, lstatSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { digestHex, sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { writeLayer } from '../../src/layer/write-layer.js';
import { getXattr } from '../../src/layer/xattr.js';
import type { Compression, LayerEntry } from '../../src/layer/types.js';
import { DirBlobStore } from './dir-blob-store.js';
import { CAP_NET_BIND, dirEntry, fileEntry, sh, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const store = new DirBlobStore(join(tmp.path, 'store'));

/** A one-layer OCI image layout around a kiln-written layer, for Go-based tools to read. */
async function layoutWith(entries: LayerEntry[], compression: Compression): Promise<string> {
  const w = await writeLayer(entries, store, { compression, sourceDateEpoch: 1_700_000_000 });
  const dir = join(tmp.path, `layout-${compression}`);
  const blobs = join(dir, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (bytes: Buffer): { digest: string; size: number } => {
    const d = sha256(bytes);
    writeFileSync(join(blobs, digestHex(d)), bytes);
    return { digest: d, size: bytes.length };
  };
  copyFileSync(store.blobPath(w.digest), join(blobs, digestHex(w.digest)));
  const config = put(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [w.diffID] } })));
  const manifest = put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        config: { mediaType: MediaType.OCI_CONFIG, ...config },
        layers: [{ mediaType: w.mediaType, digest: w.digest, size: w.size }],
      }),
    ),
  );
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.OCI_MANIFEST, ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'test' } }] }),
  );
  return dir;
}

describe('layers read by Go tools (umoci: archive/tar, compress/gzip)', () => {
  // 6 MiB of text: several gzip members, most compressed on the worker pool.
  const text = Buffer.from('kiln writes layers in one pass\n'.repeat(200_000));
  const entries = (): LayerEntry[] => [
    fileEntry('big.txt', text, { uid: 3_000_000, gid: 3_000_000 }),
    dirEntry('bin'),
    fileEntry('bin/ping', 'ping', { mode: 0o755, xattrs: { 'security.capability': CAP_NET_BIND } }),
    dirEntry('deep'),
    fileEntry(`deep/${'n'.repeat(250)}`, 'long name'),
    { path: 'hard', type: 'hardlink', mode: 0o644, uid: 0, gid: 0, mtime: 0, linkname: 'big.txt' },
    { path: 'sym', type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, linkname: `/${'t'.repeat(120)}` },
  ];

  // umoci 0.4 (Debian bookworm) predates zstd layers; the zstd CLI round trip is in write-layer.test.ts.
  for (const compression of ['gzip', 'uncompressed'] as const) {
    it(`umoci unpacks a kiln ${compression} layer with owners, xattrs, hardlinks and long names intact`, async () => {
      const layout = await layoutWith(entries(), compression);
      const bundle = join(tmp.path, `bundle-${compression}`);
      sh('umoci', ['unpack', '--image', `${layout}:test`, bundle]);
      const rootfs = join(bundle, 'rootfs');
      expect(sha256(readFileSync(join(rootfs, 'big.txt')))).toBe(sha256(text));
      const big = lstatSync(join(rootfs, 'big.txt'));
      expect([big.uid, big.gid]).toEqual([3_000_000, 3_000_000]);
      expect(lstatSync(join(rootfs, 'hard')).ino).toBe(big.ino);
      expect(getXattr(join(rootfs, 'bin/ping'), 'security.capability')).toEqual(CAP_NET_BIND);
      expect(readFileSync(join(rootfs, `deep/${'n'.repeat(250)}`), 'utf8')).toBe('long name');
      expect(readlinkSync(join(rootfs, 'sym'))).toBe(`/${'t'.repeat(120)}`);
    });
  }
});
