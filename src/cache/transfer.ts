import { copyFile, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Digest } from '../image/digest.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../image/types.js';
import { MediaType, ociLayerMediaType } from '../image/media-types.js';
import { canonicalBytes } from '../image/canonical-json.js';
import { objectShape } from '../image/document-shapes.js';
import { storeLayout } from '../store/layout.js';
import type { Store } from '../store/store.js';
import { KilnError } from '../errors/index.js';
import { CsvQuoteError, csvFields } from '../spec/csv.js';
import type { CacheIndex, CacheRecord } from './records.js';
import type { KeyParts } from './keys.js';
import type { Compression } from '../layer/types.js';

/**
 * The build cache as an OCI artifact, so CI machines share it through a
 * registry they already run (or a directory). One manifest:
 *   config  application/vnd.kiln.cache.config.v1+json — { version, records, mounts }
 *   layers  every cached layer blob, then one tar per exported cache mount.
 * Keys are content addresses (no paths, inodes or mtimes), so they mean the
 * same on every machine.
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

export type CacheImportSpec = { type: 'registry'; ref: string } | { type: 'local'; src: string; tag?: string };
/** Layer compression of an exported cache (`compression=`, `compression-level=`); default: the image's. */
export interface CacheCompression {
  compression?: Compression;
  compressionLevel?: number;
}
export type CacheExportSpec =
  | ({ type: 'registry'; ref: string; mode: 'min' | 'max'; cacheMounts: boolean } & CacheCompression)
  | ({ type: 'local'; dest: string; mode: 'min' | 'max'; cacheMounts: boolean; tag?: string } & CacheCompression)
  | { type: 'inline'; mode: 'min' };

const EXPORT_COMPRESSION_ATTRS = ['compression', 'compression-level', 'force-compression'];
/** buildx attributes kiln's behaviour always matches: accepted when true, refused when false. */
const ALWAYS_TRUE_ATTRS = ['oci-mediatypes', 'image-manifest', 'ignore-error'];
/** The attributes each cache spec takes; anything else is an error, never silently ignored. */
const CACHE_ATTRS: Record<string, string[]> = {
  'from:registry': ['type', 'ref'],
  'from:local': ['type', 'src', 'tag'],
  'to:registry': ['type', 'ref', 'mode', 'cache-mounts', ...EXPORT_COMPRESSION_ATTRS, ...ALWAYS_TRUE_ATTRS],
  'to:local': ['type', 'dest', 'mode', 'cache-mounts', 'tag', ...EXPORT_COMPRESSION_ATTRS, ...ALWAYS_TRUE_ATTRS],
  'to:inline': ['type', 'mode'],
};

/** `--cache-from` with buildx's option names (a bare reference means type=registry). */
export function parseCacheFrom(spec: string): CacheImportSpec {
  return parseCacheSpec(spec, 'from') as CacheImportSpec;
}

/** `--cache-to type=registry,ref=…,mode=max,cache-mounts=true` etc. */
export function parseCacheTo(spec: string): CacheExportSpec {
  return parseCacheSpec(spec, 'to') as CacheExportSpec;
}

function parseCacheSpec(spec: string, direction: 'from' | 'to'): CacheImportSpec | CacheExportSpec {
  let f: Map<string, string>;
  try {
    f = new Map(csvFields(spec).map((x) => [x.key, x.value?.trim() ?? 'true']));
  } catch (e) {
    if (e instanceof CsvQuoteError) throw new KilnError('USAGE', `--cache-${direction} "${spec}": unterminated quote`);
    throw e;
  }
  // buildx accepts a bare reference for --cache-from
  if (!f.has('type') && f.size === 1 && [...f.values()][0] === 'true') return { type: 'registry', ref: [...f.keys()][0]! };
  const type = f.get('type') ?? 'registry';
  const bad = (why: string) => new KilnError('USAGE', `--cache-${direction} "${spec}": ${why}`);
  const known = CACHE_ATTRS[`${direction}:${type}`];
  if (!known) throw bad(`unknown type "${type}" (registry, local${direction === 'to' ? ', inline' : ''})`);
  for (const [k, v] of f) {
    if (!known.includes(k)) throw bad(`unknown attribute "${k}" for type=${type}; known: ${known.filter((a) => a !== 'type').join(', ')}`);
    if (ALWAYS_TRUE_ATTRS.includes(k) && v !== 'true') throw bad(`${k}=${v} is not supported (kiln always writes an OCI image manifest and never fails a build over its cache export)`);
  }
  const mode = f.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new KilnError('USAGE', `--cache-${direction} "${spec}": mode must be min or max`);
  if (type === 'inline' && mode !== 'min') throw bad('type=inline exports mode=min only');
  const cacheMounts = f.get('cache-mounts') === 'true';
  const comp: CacheCompression = {};
  if (direction === 'to') {
    const c = f.get('compression');
    if (c !== undefined) {
      if (c !== 'gzip' && c !== 'zstd' && c !== 'uncompressed') throw bad(`compression must be gzip, zstd or uncompressed, not "${c}"`);
      comp.compression = c;
    }
    const level = f.get('compression-level');
    if (level !== undefined) {
      if (!/^\d+$/.test(level)) throw bad(`compression-level must be an integer, not "${level}"`);
      comp.compressionLevel = Number(level);
    }
    // every cached layer is one the build made: force-compression changes nothing, but is accepted as buildx users write it
  }
  if (type === 'registry') {
    const ref = f.get('ref');
    if (!ref) throw bad('type=registry needs ref=REGISTRY/REPO:TAG');
    return direction === 'from' ? { type, ref } : { type, ref, mode, cacheMounts, ...comp };
  }
  if (type === 'local') {
    const tag = f.get('tag');
    if (direction === 'from') {
      const src = f.get('src');
      if (!src) throw bad('type=local needs src=DIR');
      return { type, src, ...(tag ? { tag } : {}) };
    }
    const dest = f.get('dest');
    if (!dest) throw bad('type=local needs dest=DIR');
    return { type, dest, mode, cacheMounts, ...(tag ? { tag } : {}), ...comp };
  }
  if (type === 'inline' && direction === 'to') return { type: 'inline', mode: 'min' };
  throw bad(`unknown type "${type}" (registry, local${direction === 'to' ? ', inline' : ''})`);
}

interface Source {
  label: string;
  doc: CacheDocument;
  fetch(desc: Descriptor): Promise<void>;
}

export interface RegistryAccess {
  insecureRegistries: string[];
  mirrors: string[];
  signal?: AbortSignal;
}

/**
 * The caches named by --cache-from, read lazily: only manifests and the small
 * config are fetched up front; a layer blob is downloaded when the build
 * needs its content (a later step runs on it, or it ends up in the image).
 */
export class ImportedCaches {
  private readonly byKey = new Map<Digest, { rec: CacheRecord; src: Source }>();
  private readonly byDigest = new Map<Digest, Source>();
  private readonly sources: Source[] = [];

  private constructor(private readonly store: Store) {}

  static async open(store: Store, specs: CacheImportSpec[], access: RegistryAccess, warn: (msg: string) => void): Promise<ImportedCaches> {
    const caches = new ImportedCaches(store);
    for (const spec of specs) {
      try {
        const src = spec.type === 'registry' ? await registrySource(store, spec.ref, access) : await localSource(store, spec);
        if (!src) {
          warn(`cache import ${describe(spec)}: no cache found; building without it`);
          continue;
        }
        caches.add(src);
      } catch (e) {
        // a broken or missing cache degrades to a normal build, never a failure
        warn(`cache import ${describe(spec)} failed (${e instanceof Error ? e.message : String(e)}); building without it`);
      }
    }
    return caches;
  }

  private add(src: Source): void {
    this.sources.push(src);
    for (const rec of src.doc.records) {
      if (!this.byKey.has(rec.key)) this.byKey.set(rec.key, { rec, src });
      if (rec.layer && !this.byDigest.has(rec.layer.digest)) this.byDigest.set(rec.layer.digest, src);
    }
    for (const m of src.doc.mounts) if (!this.byDigest.has(m.layer.digest)) this.byDigest.set(m.layer.digest, src);
  }

  get size(): number {
    return this.byKey.size;
  }

  record(key: Digest): CacheRecord | undefined {
    return this.byKey.get(key)?.rec;
  }

  /** Makes a blob local, downloading it from the cache that listed it. */
  async ensureBlob(desc: Descriptor): Promise<void> {
    if (await this.store.hasBlob(desc.digest)) return;
    const src = this.byDigest.get(desc.digest);
    if (!src) throw new KilnError('NOT_FOUND', `layer ${desc.digest} is neither in the store nor in an imported cache`);
    await src.fetch(desc);
  }

  /** Seeds cache mounts that do not exist locally from the imported caches. */
  async importMounts(storeRoot: string): Promise<string[]> {
    const { extractLayer } = await import('../layer/extract.js');
    const done: string[] = [];
    const root = storeLayout(storeRoot).cacheMounts;
    for (const src of this.sources) {
      for (const m of src.doc.mounts) {
        if (!/^[A-Za-z0-9._-]+$/.test(m.dir)) continue;
        const dir = path.join(root, m.dir);
        if (await stat(dir).catch(() => undefined)) continue;
        await this.ensureBlob(m.layer);
        const tmp = `${dir}.new-import-${process.pid}`;
        await rm(tmp, { recursive: true, force: true });
        await mkdir(root, { recursive: true });
        await extractLayer(this.store.openBlob(m.layer.digest), m.layer.mediaType, tmp);
        await rename(tmp, dir).catch(async () => rm(tmp, { recursive: true, force: true }));
        done.push(m.dir);
      }
    }
    return done;
  }
}

/** Local records first; on a local miss, the imported caches (whose blobs may still be remote). */
export class LayeredCacheIndex implements CacheIndex {
  constructor(
    private readonly local: CacheIndex,
    private readonly imported: ImportedCaches,
  ) {}

  async get(key: Digest): Promise<CacheRecord | undefined> {
    return (await this.local.get(key)) ?? this.imported.record(key);
  }

  put(record: CacheRecord, slot: string, parts: KeyParts): Promise<void> {
    return this.local.put(record, slot, parts);
  }

  addVariants(record: CacheRecord, variants: Array<{ mediaType: string; digest: Digest; size: number }>): Promise<void> {
    return this.local.addVariants(record, variants);
  }

  explain(slot: string, parts: KeyParts): Promise<string | undefined> {
    return this.local.explain(slot, parts);
  }
}

async function registrySource(store: Store, refText: string, access: RegistryAccess): Promise<Source | undefined> {
  const { RegistryClient, parseReference } = await import('../registry/index.js');
  const ref = parseReference(refText);
  const client = new RegistryClient({ insecureRegistries: access.insecureRegistries, mirrors: access.mirrors, ...(access.signal ? { signal: access.signal } : {}) });
  const fetchTo = async (desc: Descriptor) => {
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
    const { hostPlatform, selectManifest } = await import('../image/platform.js');
    const chosen = selectManifest(manifest.manifests, hostPlatform());
    if (!chosen) throw new KilnError('REGISTRY', `${refText}: the index has no image for this platform`);
    manifest = JSON.parse((await client.getManifest(ref.withDigest(chosen.digest))).bytes.toString('utf8')) as Manifest;
  }
  if (!('config' in manifest) || !manifest.config) throw new KilnError('REGISTRY', `${refText} is not a cache manifest`);
  if (!(await store.hasBlob(manifest.config.digest))) await fetchTo(manifest.config);
  // the stored config is read like every store JSON: a damaged or hostile one is a StoreCorruptError naming the blob
  const config = (await store.readJSON(manifest.config.digest, (v) => objectShape(v, 'cache config'))) as unknown as CacheDocument | (ImageConfig & { [INLINE_CACHE_FIELD]?: CacheDocument });
  const doc = manifest.config.mediaType === CACHE_CONFIG_TYPE ? (config as CacheDocument) : (config as { [INLINE_CACHE_FIELD]?: CacheDocument })[INLINE_CACHE_FIELD];
  if (!doc) return undefined;
  return { label: refText, doc: checkDoc(doc, refText), fetch: fetchTo };
}

async function localSource(store: Store, spec: { src: string; tag?: string }): Promise<Source | undefined> {
  const index = JSON.parse(await readFile(path.join(spec.src, 'index.json'), 'utf8').catch(() => '{"manifests":[]}')) as { manifests: Descriptor[] };
  const want = spec.tag ?? 'latest';
  const top = index.manifests.find((m) => (m.annotations?.['org.opencontainers.image.ref.name'] ?? 'latest') === want) ?? index.manifests[0];
  if (!top) return undefined;
  const blob = (d: Digest) => path.join(spec.src, 'blobs', 'sha256', d.slice(7));
  const fetchTo = async (desc: Descriptor) => {
    await store.writeBlob(createReadStream(blob(desc.digest)), { digest: desc.digest, size: desc.size });
  };
  const manifest = JSON.parse(await readFile(blob(top.digest), 'utf8')) as Manifest;
  const doc = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as CacheDocument;
  return { label: spec.src, doc: checkDoc(doc, spec.src), fetch: fetchTo };
}

function checkDoc(doc: CacheDocument, label: string): CacheDocument {
  if (doc.version !== 1 || !Array.isArray(doc.records)) throw new KilnError('UNSUPPORTED', `${label}: unknown cache format`);
  return { version: 1, records: doc.records.filter((r) => r && typeof r.key === 'string'), mounts: Array.isArray(doc.mounts) ? doc.mounts : [] };
}

function describe(spec: CacheImportSpec): string {
  return spec.type === 'registry' ? spec.ref : spec.src;
}

/**
 * Writes the cache for `keys` (records already in the local index) plus,
 * optionally, the cache mounts this store holds, to a registry or a directory.
 */
export async function exportCache(
  store: Store,
  spec: Exclude<CacheExportSpec, { type: 'inline' }>,
  records: CacheRecord[],
  access: RegistryAccess,
): Promise<Descriptor> {
  const mounts = spec.cacheMounts ? await exportMounts(store) : [];
  const doc: CacheDocument = { version: 1, records, mounts };
  const configBytes = canonicalBytes(doc);
  const config = await store.putBytes(configBytes);
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
  const bytes = canonicalBytes(manifest);
  const m = await store.putBytes(bytes);
  const desc: Descriptor = { mediaType: MediaType.OCI_MANIFEST, digest: m.digest, size: m.size, artifactType: CACHE_ARTIFACT_TYPE };
  if (spec.type === 'local') {
    await writeLayoutDir(store, spec.dest, desc, [manifest.config, ...manifest.layers], spec.tag ?? 'latest');
    return desc;
  }
  const { RegistryClient, parseReference } = await import('../registry/index.js');
  const { storeSource } = await import('../registry/push.js');
  const ref = parseReference(spec.ref);
  const client = new RegistryClient({ insecureRegistries: access.insecureRegistries, mirrors: access.mirrors, ...(access.signal ? { signal: access.signal } : {}) });
  try {
    for (const d of [manifest.config, ...manifest.layers]) await client.pushBlob(ref, d, storeSource(store, d.digest));
    await client.putManifest(ref, ref.tag ?? 'latest', bytes, MediaType.OCI_MANIFEST);
  } finally {
    await client.close();
  }
  return desc;
}

async function exportMounts(store: Store): Promise<CacheMountExport[]> {
  const { listCacheDirs } = await import('../sandbox/cache-mounts.js');
  const { entriesFromDirectory, writeLayer } = await import('../layer/index.js');
  const out: CacheMountExport[] = [];
  for (const dir of await listCacheDirs(store.root)) {
    const layer = await writeLayer(entriesFromDirectory(path.join(store.layout.cacheMounts, dir)), store, { compression: 'gzip' });
    out.push({ dir, layer: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size, diffID: layer.diffID } });
  }
  return out;
}

async function writeLayoutDir(store: Store, dest: string, top: Descriptor, blobs: Descriptor[], tag: string): Promise<void> {
  const blobDir = path.join(dest, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  for (const d of [...blobs, top]) {
    const target = path.join(blobDir, d.digest.slice(7));
    if (await stat(target).catch(() => undefined)) continue;
    await copyFile(store.blobPath(d.digest), `${target}.tmp`);
    await rename(`${target}.tmp`, target);
  }
  await writeFile(path.join(dest, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [{ ...top, annotations: { 'org.opencontainers.image.ref.name': tag } }] };
  await writeFile(path.join(dest, 'index.json.tmp'), JSON.stringify(index));
  await rename(path.join(dest, 'index.json.tmp'), path.join(dest, 'index.json'));
}
