import type { Digest } from '../../image/digest.js';
import type { LayerRef } from '../../image/image.js';
import type { Descriptor } from '../../image/types.js';
import type { Store } from '../../store/store.js';
import { KilnError, isKilnError } from '../../errors/index.js';
import { proveDiffID } from '../../layer/recompress.js';
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

type LayerPair = NonNullable<CacheRecord['layer']>;

/** A cancelled build stops; it is not a cache that failed to prove a layer. */
function isCancel(e: unknown): boolean {
  return (isKilnError(e) && e.code === 'CANCELLED') || (e instanceof Error && e.name === 'AbortError');
}

/**
 * The caches named by --cache-from, read lazily: only manifests and the small
 * config are fetched up front; a layer blob is downloaded when a step hits
 * its record. A record's layer pair (blob digest, diffID) is only the
 * cache's claim: the store reuses a snapshot, re-compresses and ships a blob
 * by its diffID, so a blob whose content is not that diffID would make the
 * image differ from what the build ran on. The pair is proven (the blob
 * decompressed and hashed) before the record counts as a hit; one that fails
 * is dropped with a warning and the step runs.
 */
export class ImportedCaches {
  /** Every source's record for a key, first source first: a record that fails its proof leaves the next. */
  private readonly byKey = new Map<Digest, Array<{ rec: CacheRecord; src: CacheSource }>>();
  private readonly byDigest = new Map<Digest, CacheSource>();
  private readonly sources: CacheSource[] = [];
  /** Pairs checked in this build, by `digest diffID`: undefined when proven, else why not (shared by concurrent lookups). */
  private readonly proofs = new Map<string, Promise<string | undefined>>();

  constructor(
    private readonly store: Store,
    private readonly warn: (message: string) => void,
  ) {}

  add(src: CacheSource): void {
    this.sources.push(src);
    for (const rec of src.doc.records) {
      const list = this.byKey.get(rec.key) ?? [];
      list.push({ rec, src });
      this.byKey.set(rec.key, list);
      if (rec.layer && !this.byDigest.has(rec.layer.digest)) this.byDigest.set(rec.layer.digest, src);
    }
    for (const m of src.doc.mounts) if (!this.byDigest.has(m.layer.digest)) this.byDigest.set(m.layer.digest, src);
  }

  get size(): number {
    return this.byKey.size;
  }

  /**
   * The imported record for `key` whose layer is proven, or undefined. A
   * record that fails is forgotten (a later lookup of the key, from another
   * platform or the cache export, misses without a second warning); `step`
   * names the step in the warning.
   */
  async record(key: Digest, step?: string): Promise<CacheRecord | undefined> {
    const list = this.byKey.get(key);
    while (list?.length) {
      const { rec, src } = list[0]!;
      const why = rec.layer ? await this.prove(rec.layer, src) : undefined;
      if (why === undefined) return rec;
      // a concurrent lookup (another platform's solve) may have dropped it while this one waited: it warned then
      if (list[0]?.rec !== rec) continue;
      list.shift();
      this.warn(`cache import ${src.label}: not using its record for ${step !== undefined ? `step "${oneLine(step)}"` : key}: ${why}; the step runs`);
    }
    return undefined;
  }

  /**
   * Makes a layer local: a blob already in the store is taken as it is (the
   * store's own, or a record's already proven); one only an imported cache
   * has is fetched and proven like a record's.
   */
  async ensureLayer(ref: LayerRef): Promise<void> {
    if (await this.store.hasBlob(ref.descriptor.digest)) return;
    const src = this.byDigest.get(ref.descriptor.digest);
    if (!src) throw new KilnError('NOT_FOUND', `layer ${ref.descriptor.digest} is neither in the store nor in an imported cache`);
    const why = await this.prove({ ...ref.descriptor, diffID: ref.diffID }, src);
    if (why !== undefined) throw new KilnError('DIGEST_MISMATCH', `cache ${src.label}: ${why}`);
  }

  /** Makes a blob local, downloading it from the cache that listed it (cache-mount tars, whose content is only ever a cache's). */
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

  private prove(layer: LayerPair, src: CacheSource): Promise<string | undefined> {
    const id = `${layer.digest} ${layer.diffID}`;
    let p = this.proofs.get(id);
    if (!p) {
      p = this.check(layer, src);
      this.proofs.set(id, p);
      // a cancelled check is not a verdict: the next lookup tries again
      p.catch(() => this.proofs.delete(id));
    }
    return p;
  }

  /** Undefined when `layer.digest`'s content has `layer.diffID`; else why not. Only cancellation throws. */
  private async check(layer: LayerPair, src: CacheSource): Promise<string | undefined> {
    const desc: Descriptor = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size };
    // a pair the store hashed itself (it wrote, extracted, re-compressed or proved this blob before) needs no second pass
    const known = await this.store.blobsForDiffID(layer.diffID, { verifiedOnly: true });
    if (known.some((d) => d.digest === layer.digest && d.size === layer.size)) return undefined;
    try {
      // a blob already stored under this digest is the same bytes, but not yet proven to be this diffID
      if (!(await this.store.hasBlob(layer.digest))) await src.fetch(desc);
      const size = await this.store.blobSize(layer.digest);
      if (size !== layer.size) return `its layer ${layer.digest} is ${size ?? 0} bytes, not the ${layer.size} it claims`;
      // a match makes the pair a fact: snapshots, re-compression and `kiln load` take it without hashing again
      const got = await proveDiffID(this.store, desc, layer.diffID);
      if (got !== layer.diffID) return `its layer ${layer.digest} decompresses to ${got}, not the diffID ${layer.diffID} it claims`;
    } catch (e) {
      if (isCancel(e)) throw e;
      return `its layer ${layer.digest} could not be read (${e instanceof Error ? e.message : String(e)})`;
    }
    return undefined;
  }
}

/** A step's text on one line, for a warning (a heredoc or continued line spans several). */
function oneLine(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 120 ? `${flat.slice(0, 117)}...` : flat;
}

/** Local records first; on a local miss, the imported caches' (proven before they count, see ImportedCaches). */
export class LayeredCacheIndex implements CacheIndex {
  constructor(
    private readonly local: CacheIndex,
    private readonly imported: ImportedCaches,
  ) {}

  async get(key: Digest, about?: { step: string }): Promise<CacheRecord | undefined> {
    return (await this.local.get(key)) ?? this.imported.record(key, about?.step);
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
