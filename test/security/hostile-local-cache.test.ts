import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { StoreCacheIndex } from '../../src/cache/records.js';
import { importCaches } from '../../src/cache/remote/index.js';
import { localSource } from '../../src/cache/remote/local.js';
import { canonicalJSON } from '../../src/image/canonical-json.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { tempDir, tempStore } from '../helpers/temp-dir.js';

/**
 * `--cache-from type=local,src=DIR` reads a directory whose content may come from anywhere
 * (a CI artifact, a shared volume). Its index cannot name a file outside `blobs/`, a
 * document cannot be unbounded, and a blob cannot be a device or FIFO that streams forever.
 */
describe('a hostile local cache directory', () => {
  function layout(dir: string, manifestDigest: string, size = 10): void {
    mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.OCI_MANIFEST, digest: manifestDigest, size }] }));
  }

  it('refuses an index entry whose digest is a path, and degrades the build to no cache with a warning', async () => {
    const t = await tempDir();
    const s = await tempStore();
    try {
      writeFileSync(join(t.path, 'secret.json'), '{"records":[]}');
      layout(join(t.path, 'cache'), 'sha256:../../../secret.json');
      await expect(localSource(s.store, { src: join(t.path, 'cache') }, () => undefined)).rejects.toThrow(/invalid digest "sha256:\.\.\/\.\.\/\.\.\/secret\.json"/);
      const warnings: string[] = [];
      const local = new StoreCacheIndex(s.store.layout, (d) => s.store.hasBlob(d));
      await importCaches(s.store, local, [{ type: 'local', src: join(t.path, 'cache') }], { insecureRegistries: [], mirrors: [] }, (m) => warnings.push(m));
      expect(warnings).toEqual([expect.stringContaining('invalid digest')]);
    } finally {
      await s.cleanup();
      await t.cleanup();
    }
  });

  it('refuses a manifest that is a device, and a layer blob that is a symlink to /dev/zero, instead of reading forever', async () => {
    const t = await tempDir();
    const s = await tempStore();
    try {
      const dir = join(t.path, 'cache');
      const devDigest = sha256('device');
      layout(dir, devDigest);
      symlinkSync('/dev/zero', join(dir, 'blobs', 'sha256', devDigest.slice(7)));
      await expect(localSource(s.store, { src: dir }, () => undefined)).rejects.toThrow(/is missing/);

      // a good manifest and config, whose one layer blob is /dev/zero
      const layer = { mediaType: MediaType.OCI_LAYER_GZIP, digest: sha256('layer'), size: 100 };
      const config = Buffer.from(canonicalJSON({ version: 1, records: [], mounts: [] }));
      const configDesc = { mediaType: 'application/vnd.kiln.cache.config.v1+json', digest: sha256(config), size: config.length };
      const manifest = Buffer.from(canonicalJSON({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: configDesc, layers: [layer] }));
      const manifestDigest = sha256(manifest);
      layout(dir, manifestDigest, manifest.length);
      writeFileSync(join(dir, 'blobs', 'sha256', manifestDigest.slice(7)), manifest);
      writeFileSync(join(dir, 'blobs', 'sha256', configDesc.digest.slice(7)), config);
      symlinkSync('/dev/zero', join(dir, 'blobs', 'sha256', layer.digest.slice(7)));
      const src = await localSource(s.store, { src: dir }, () => undefined);
      await expect(src!.fetch(layer)).rejects.toThrow(/is missing/);
      expect(await s.store.hasBlob(layer.digest)).toBe(false);
    } finally {
      await s.cleanup();
      await t.cleanup();
    }
  });
});
