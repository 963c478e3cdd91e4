import type { Descriptor, Index, Manifest } from '../../image/types.js';
import { MediaType } from '../../image/media-types.js';
import { objectShape } from '../../image/document-shapes.js';
import type { Store } from '../../store/store.js';
import { KilnError } from '../../errors/index.js';
import { CACHE_CONFIG_TYPE, checkDoc, type CacheArtifact } from '../document.js';
import type { CacheSource } from './imported.js';
import { inlineCacheOf } from './inline.js';

/** How the registry backend reaches registries (the build's --insecure-registry, mirrors and cancel signal). */
export interface RegistryAccess {
  insecureRegistries: string[];
  mirrors: string[];
  signal?: AbortSignal;
}

async function clientFor(access: RegistryAccess) {
  const { RegistryClient } = await import('../../registry/index.js');
  return new RegistryClient({ insecureRegistries: access.insecureRegistries, mirrors: access.mirrors, ...(access.signal ? { signal: access.signal } : {}) });
}

/**
 * `--cache-from type=registry,ref=…`: a cache artifact, or an image whose
 * config carries an inline cache (an index is resolved to this platform's
 * image). Undefined when the reference does not exist or holds no cache.
 */
export async function registrySource(store: Store, refText: string, access: RegistryAccess, warn: (message: string) => void): Promise<CacheSource | undefined> {
  const { parseReference, checkDescriptor, checkDocumentSize } = await import('../../registry/index.js');
  const ref = parseReference(refText);
  const client = await clientFor(access);
  // the cache's descriptors come from a registry anyone may push to: checked as a pull checks
  // its own (sha256 digests, whole sizes, documents bounded), so a download has a size to stop at
  const fetchTo = async (desc: Descriptor) => {
    checkDescriptor(desc, 'cache blob', ref);
    await store.writeBlob(client.blob(ref, desc), { digest: desc.digest, size: desc.size });
    await store.recordBlobOrigin(desc.digest, ref.registry, ref.repository);
  };
  let fetched;
  try {
    fetched = await client.getManifest(ref);
  } catch (e) {
    if (e instanceof KilnError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
  let manifest = JSON.parse(fetched.bytes.toString('utf8')) as Manifest | Index;
  if ('manifests' in manifest) {
    // an image pushed with attestations (or several platforms) is an index: the inline cache is in this platform's image config
    const { hostPlatform, selectManifest } = await import('../../image/platform.js');
    const chosen = selectManifest(manifest.manifests, hostPlatform());
    if (!chosen) throw new KilnError('REGISTRY', `${refText}: the index has no image for this platform`);
    // fetched by digest only (verified against the bytes), and no bigger than any manifest may be
    checkDocumentSize(chosen, 'manifest', ref);
    manifest = JSON.parse((await client.getManifest(ref.withDigest(chosen.digest))).bytes.toString('utf8')) as Manifest;
  }
  if (!('config' in manifest) || !manifest.config) throw new KilnError('REGISTRY', `${refText} is not a cache manifest`);
  checkDocumentSize(manifest.config, 'config', ref);
  if (!(await store.hasBlob(manifest.config.digest))) await fetchTo(manifest.config);
  // the stored config is read like every store JSON: a damaged or hostile one is a StoreCorruptError naming the blob
  const config: unknown = await store.readJSON(manifest.config.digest, (v) => objectShape(v, 'cache config'));
  const doc = manifest.config.mediaType === CACHE_CONFIG_TYPE ? config : inlineCacheOf(config);
  if (!doc) return undefined;
  return { label: refText, doc: checkDoc(doc, refText, warn), fetch: fetchTo };
}

/** `--cache-to type=registry,ref=…`: pushes the artifact's blobs, then its manifest under the reference's tag. */
export async function exportToRegistry(store: Store, refText: string, artifact: CacheArtifact, access: RegistryAccess): Promise<void> {
  const { parseReference } = await import('../../registry/index.js');
  const { storeSource } = await import('../../registry/push.js');
  const ref = parseReference(refText);
  const client = await clientFor(access);
  try {
    for (const d of artifact.blobs) await client.pushBlob(ref, d, storeSource(store, d.digest));
    await client.putManifest(ref, ref.tag ?? 'latest', artifact.manifestBytes, MediaType.OCI_MANIFEST);
  } finally {
    await client.close();
  }
}
