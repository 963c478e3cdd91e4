import type { Digest } from '../image/digest.js';
import { MediaType, ociLayerMediaType } from '../image/media-types.js';
import { canonicalBytes } from '../image/canonical-json.js';
import type { Descriptor, Manifest } from '../image/types.js';
import type { Store } from '../store/store.js';
import { KilnError } from '../errors/index.js';
import type { CacheRecord } from './records.js';

/**
 * The build cache as an OCI artifact, so CI machines share it through a
 * registry they already run (or a directory). One manifest:
 *   config  application/vnd.kiln.cache.config.v1+json — { version, records, mounts }
 *   layers  every cached layer blob, then one tar per exported cache mount.
 * Keys are content addresses (no paths, inodes or mtimes), so they mean the
 * same on every machine. `type=inline` puts the same document, without
 * mounts, in the image config under INLINE_CACHE_FIELD.
 */
export const CACHE_ARTIFACT_TYPE = 'application/vnd.kiln.cache.v1';
export const CACHE_CONFIG_TYPE = 'application/vnd.kiln.cache.config.v1+json';
/** Where `type=inline` puts the records in an image config. */
export const INLINE_CACHE_FIELD = 'kiln.cache.v1';

export interface CacheMountExport {
  /** Directory name under `<root>/cache-mounts/`. */
  dir: string;
  layer: { mediaType: string; digest: Digest; size: number; diffID: Digest };
}

export interface CacheDocument {
  version: 1;
  records: CacheRecord[];
  mounts: CacheMountExport[];
}

/** A cache document read from elsewhere, checked: unknown versions are refused, malformed records dropped. */
export function checkDoc(doc: CacheDocument, label: string): CacheDocument {
  if (doc.version !== 1 || !Array.isArray(doc.records)) throw new KilnError('UNSUPPORTED', `${label}: unknown cache format`);
  return { version: 1, records: doc.records.filter((r) => r && typeof r.key === 'string'), mounts: Array.isArray(doc.mounts) ? doc.mounts : [] };
}

/** A cache artifact put in the store: its manifest (bytes as stored), descriptor, and every blob it names. */
export interface CacheArtifact {
  descriptor: Descriptor;
  manifest: Manifest;
  manifestBytes: Buffer;
  /** Config first, then the layers. */
  blobs: Descriptor[];
}

/** Writes the config and manifest of a cache artifact for `records` and `mounts` to the store. */
export async function storeCacheArtifact(store: Store, records: CacheRecord[], mounts: CacheMountExport[]): Promise<CacheArtifact> {
  const doc: CacheDocument = { version: 1, records, mounts };
  const config = await store.putBytes(canonicalBytes(doc));
  const layers = new Map<Digest, Descriptor>();
  for (const r of records) if (r.layer) layers.set(r.layer.digest, { mediaType: ociLayerMediaType(r.layer.mediaType), digest: r.layer.digest, size: r.layer.size });
  for (const m of mounts) layers.set(m.layer.digest, { mediaType: m.layer.mediaType, digest: m.layer.digest, size: m.layer.size });
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    artifactType: CACHE_ARTIFACT_TYPE,
    config: { mediaType: CACHE_CONFIG_TYPE, digest: config.digest, size: config.size },
    layers: [...layers.values()],
  };
  const manifestBytes = canonicalBytes(manifest);
  const m = await store.putBytes(manifestBytes);
  const descriptor: Descriptor = { mediaType: MediaType.OCI_MANIFEST, digest: m.digest, size: m.size, artifactType: CACHE_ARTIFACT_TYPE };
  return { descriptor, manifest, manifestBytes, blobs: [manifest.config, ...manifest.layers] };
}
