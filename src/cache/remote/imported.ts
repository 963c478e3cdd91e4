import type { Digest } from '../../image/digest.js';
import type { Descriptor } from '../../image/types.js';
import type { Store } from '../../store/store.js';
import { KilnError } from '../../errors/index.js';
import type { CacheIndex, CacheRecord } from '../records.js';
import type { KeyParts } from '../keys.js';
import type { CacheDocument } from '../document.js';
import { importMounts } from '../mounts.js';

/** One imported cache, as a backend found it: its document, and how to fetch a blob it names. */
export interface CacheSource {
  label: string;
  doc: CacheDocument;
  fetch(desc: Descriptor): Promise<void>;
}

/**
 * The caches named by --cache-from, read lazily: only manifests and the small
 * config are fetched up front; a layer blob is downloaded when the build
 * needs its content (a later step runs on it, or it ends up in the image).
 */
export class ImportedCaches {
  private readonly byKey = new Map<Digest, { rec: CacheRecord; src: CacheSource }>();
  private readonly byDigest = new Map<Digest, CacheSource>();
  private readonly sources: CacheSource[] = [];

  constructor(private readonly store: Store) {}

  add(src: CacheSource): void {
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
  importMounts(): Promise<string[]> {
    return importMounts(this.store, this.sources.flatMap((s) => s.doc.mounts), (d) => this.ensureBlob(d));
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

  /** An imported record may match any step, so with one imported nothing is a sure miss. */
  async builtBefore(slot: string): Promise<boolean> {
    return this.imported.size > 0 || this.local.builtBefore(slot);
  }
}
