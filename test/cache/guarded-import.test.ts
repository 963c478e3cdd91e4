import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { StoreCacheIndex } from '../../src/cache/records.js';
import { importCaches } from '../../src/cache/remote/index.js';
import { canonicalJSON } from '../../src/image/canonical-json.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Manifest } from '../../src/image/types.js';
import { parseReference, RegistryClient } from '../../src/registry/index.js';
import { tempStore, uniqueRepo } from '../registry/helpers/images.js';

const reg = inject('registry');

/**
 * A --cache-from image comes from a registry anyone may push to: its config
 * is stored, then read through the store's guarded JSON decoder, so a hostile
 * one degrades the build to no cache with a warning naming the blob.
 */
describe('cache import of a hostile config', () => {
  let s: Awaited<ReturnType<typeof tempStore>>;
  let client: RegistryClient;
  beforeAll(async () => {
    s = await tempStore();
    client = new RegistryClient();
  });
  afterAll(async () => {
    await client.close();
    await s.dispose();
  });

  it('a config that is not a JSON object is a warning naming the stored blob, and imports nothing', async () => {
    for (const text of ['null', '[1,2]', '"text"']) {
      const ref = parseReference(`${reg.anon}/${uniqueRepo('hostile-cache')}:v1`);
      const bytes = Buffer.from(text);
      const config = { mediaType: MediaType.OCI_CONFIG, digest: sha256(bytes), size: bytes.length };
      await client.pushBlob(ref, config, async function* (start, end) {
        yield bytes.subarray(start, end);
      });
      const manifest: Manifest = { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [] };
      await client.putManifest(ref, ref.tag!, Buffer.from(canonicalJSON(manifest)), MediaType.OCI_MANIFEST);

      const warnings: string[] = [];
      const local = new StoreCacheIndex(s.store.layout, (d) => s.store.hasBlob(d));
      const caches = await importCaches(s.store, local, [{ type: 'registry', ref: ref.toString() }], { insecureRegistries: [], mirrors: [] }, (m) => warnings.push(m));
      expect(warnings).toEqual([expect.stringContaining(`failed (blob ${config.digest}: cache config is not a JSON object); building without it`)]);
      expect(await caches.index.get(sha256('any key'))).toBeUndefined();
      // the blob itself was stored verified: it is the content the registry served
      expect(await s.store.hasBlob(config.digest)).toBe(true);
    }
  });

  it('a config descriptor without a size, or over the document limit, is refused before any download', async () => {
    for (const [size, why] of [[undefined, 'invalid size'], [8 * 1024 * 1024 * 1024, "over kiln's limit"]] as const) {
      const ref = parseReference(`${reg.anon}/${uniqueRepo('hostile-cache')}:v1`);
      const bytes = Buffer.from('{"version":1,"records":[],"mounts":[]}');
      const pushed = { mediaType: 'application/vnd.kiln.cache.config.v1+json', digest: sha256(bytes), size: bytes.length };
      await client.pushBlob(ref, pushed, async function* (start, end) {
        yield bytes.subarray(start, end);
      });
      const config = { mediaType: pushed.mediaType, digest: pushed.digest, ...(size !== undefined ? { size } : {}) };
      const manifest = { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config, layers: [] };
      await client.putManifest(ref, ref.tag!, Buffer.from(canonicalJSON(manifest)), MediaType.OCI_MANIFEST);
      const warnings: string[] = [];
      const local = new StoreCacheIndex(s.store.layout, (d) => s.store.hasBlob(d));
      await importCaches(s.store, local, [{ type: 'registry', ref: ref.toString() }], { insecureRegistries: [], mirrors: [] }, (m) => warnings.push(m));
      expect(warnings).toEqual([expect.stringContaining(why)]);
      expect(await s.store.hasBlob(pushed.digest)).toBe(false);
    }
  });
});
