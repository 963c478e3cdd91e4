import type { Digest } from '../image/digest.js';
import { MediaType, ociLayerMediaType } from '../image/media-types.js';
import { canonicalBytes } from '../image/canonical-json.js';
import { descriptorShape, digestShape, fail, isObject, objectShape, ShapeError, stringShape } from '../image/document-shapes.js';
import type { Descriptor, HistoryEntry, Manifest } from '../image/types.js';
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

type LayerPair = CacheMountExport['layer'];

/** A layer as a record or mount names it: a descriptor (sha256 digest, whole size) plus the diffID it claims. */
function layerPairShape(v: unknown, what: string): LayerPair {
  const d = descriptorShape(v, what);
  const diffID = digestShape(objectShape(v, what)['diffID'], `${what}.diffID`);
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, diffID };
}

/** The history entry a cached step puts in the image config: an object of optional strings and one flag. */
function historyShape(v: unknown, what: string): HistoryEntry {
  const o = objectShape(v, what);
  const out: HistoryEntry = {};
  for (const k of ['created', 'created_by', 'author', 'comment'] as const) {
    if (o[k] !== undefined) out[k] = stringShape(o[k], `${what}.${k}`);
  }
  if (o['empty_layer'] !== undefined) {
    if (typeof o['empty_layer'] !== 'boolean') fail(`${what}.empty_layer is not a boolean`);
    out.empty_layer = o['empty_layer'];
  }
  return out;
}

/**
 * One record of an imported document. Every field the build reads is checked
 * (the solver applies a record without looking further), and the record is
 * rebuilt from those fields only: `variants` are local to a store, never
 * taken from a cache.
 */
function importedRecordShape(v: unknown, what: string): CacheRecord {
  const o = objectShape(v, what);
  const key = digestShape(o['key'], `${what}.key`);
  const layer = o['layer'] === undefined ? undefined : layerPairShape(o['layer'], `${what}.layer`);
  return { version: 1, key, ...(layer ? { layer } : {}), history: historyShape(o['history'], `${what}.history`) };
}

function mountShape(v: unknown, what: string): CacheMountExport {
  const o = objectShape(v, what);
  return { dir: stringShape(o['dir'], `${what}.dir`), layer: layerPairShape(o['layer'], `${what}.layer`) };
}

/**
 * A cache document read from elsewhere, checked: an unknown version is
 * refused (the caller builds without the cache); a malformed record or mount
 * is dropped and the rest used, with one warning naming how many and the
 * first reason — a hostile entry costs its own hit, never the build.
 */
export function checkDoc(doc: unknown, label: string, warn: (message: string) => void): CacheDocument {
  const o = isObject(doc) ? doc : {};
  if (o['version'] !== 1 || !Array.isArray(o['records'])) throw new KilnError('UNSUPPORTED', `${label}: unknown cache format`);
  const dropped: string[] = [];
  const valid = <T>(list: unknown[], shape: (v: unknown, what: string) => T, what: string): T[] =>
    list.flatMap((v, i) => {
      try {
        return [shape(v, `${what} ${i}`)];
      } catch (e) {
        if (!(e instanceof ShapeError)) throw e;
        dropped.push(e.message);
        return [];
      }
    });
  const records = valid(o['records'], importedRecordShape, 'record');
  const mounts = Array.isArray(o['mounts']) ? valid(o['mounts'], mountShape, 'mount') : [];
  if (dropped.length) {
    const more = dropped.length > 1 ? ` and ${dropped.length - 1} more` : '';
    warn(`cache import ${label}: ${dropped.length} malformed ${dropped.length === 1 ? 'entry' : 'entries'} ignored (${dropped[0]}${more}); the rest of the cache is used`);
  }
  return { version: 1, records, mounts };
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
