import { existsSync, utimesSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { StoreCorruptError } from '../errors/index.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import { readStoreJSON } from '../store/json-file.js';
import type { StoreLayout } from '../store/layout.js';
import { isDigest, type Digest } from '../image/digest.js';
import { objectShape, ShapeError, type Shape } from '../image/document-shapes.js';
import type { HistoryEntry } from '../image/types.js';
import { explainMiss } from './keys.js';
import type { KeyParts } from './keys.js';

/** What one cached file-system step produced. Config changes never need a record: they follow from the key chain. */
export interface CacheRecord {
  version: 1;
  key: Digest;
  layer?: { mediaType: string; digest: Digest; size: number; diffID: Digest };
  /**
   * The same layer (same diffID) in other compressions, made when an output
   * asked for one: kept here so garbage collection keeps them with the record
   * and the next build in that compression re-uses them. Never exported.
   */
  variants?: Array<{ mediaType: string; digest: Digest; size: number }>;
  history: HistoryEntry;
}

export interface CacheIndex {
  /** The record for `key`; `about.step` names the step asking, for a warning when an imported record is refused. */
  get(key: Digest, about?: { step: string }): Promise<CacheRecord | undefined>;
  put(record: CacheRecord, slot: string, parts: KeyParts): Promise<void>;
  /** Adds blobs of `record`'s layer in other compressions to the local record (creating it from `record` when absent). */
  addVariants(record: CacheRecord, variants: Array<{ mediaType: string; digest: Digest; size: number }>): Promise<void>;
  /** Why `parts` misses compared with what the same Dockerfile position produced last time. */
  explain(slot: string, parts: KeyParts): Promise<string | undefined>;
  /**
   * Whether a record could match the step at `slot` (a Dockerfile position): false when this
   * store never built it and no cache is imported, so the step is expected to miss. A hint only:
   * the key still decides.
   */
  builtBefore(slot: string): Promise<boolean>;
}

/**
 * Step records under `<root>/cache/records/<key hex>.json`, one small file per
 * key written atomically; `cache/slots/` remembers the key parts last seen at
 * each Dockerfile position so a miss can be explained.
 */
export class StoreCacheIndex implements CacheIndex {
  private readonly tmpDir: string;

  constructor(
    private readonly places: Pick<StoreLayout, 'cacheRecords' | 'cacheSlots' | 'tmp'>,
    private readonly blobExists: (d: Digest) => Promise<boolean>,
  ) {
    this.tmpDir = places.tmp;
  }

  async get(key: Digest): Promise<CacheRecord | undefined> {
    let rec = await readRecord(this.recordPath(key));
    if (!rec || rec.version !== 1 || rec.key !== key) return undefined;
    if (rec.layer && !(await this.blobExists(rec.layer.digest))) {
      // the layer in another compression serves as well; a record whose every blob was pruned is a miss, not an error
      let alt: { mediaType: string; digest: Digest; size: number } | undefined;
      for (const v of rec.variants ?? []) if (await this.blobExists(v.digest)) { alt = v; break; }
      if (!alt) return undefined;
      rec = { ...rec, layer: { mediaType: alt.mediaType, digest: alt.digest, size: alt.size, diffID: rec.layer.diffID } };
    }
    // the record's mtime is its last use: garbage collection evicts the least recently used first
    // (synchronous, as its read was: a cached build touches every step's record in turn)
    const now = new Date();
    try {
      utimesSync(this.recordPath(key), now, now);
    } catch {
      // a record that cannot be touched is still a hit; it only ages sooner
    }
    return rec;
  }

  async put(record: CacheRecord, slot: string, parts: KeyParts): Promise<void> {
    await this.writeAtomic(this.recordPath(record.key), JSON.stringify(record));
    await this.writeAtomic(this.slotPath(slot), JSON.stringify(parts));
  }

  async addVariants(record: CacheRecord, variants: Array<{ mediaType: string; digest: Digest; size: number }>): Promise<void> {
    if (!record.layer) return;
    let rec: CacheRecord = record;
    // not local yet (an imported record, or a damaged one): it becomes one
    const onDisk = await readRecord(this.recordPath(record.key));
    if (onDisk && onDisk.version === 1 && onDisk.key === record.key && onDisk.layer?.diffID === record.layer.diffID) rec = onDisk;
    const have = new Set([rec.layer!.digest, ...(rec.variants ?? []).map((v) => v.digest)]);
    const add = variants.filter((v) => !have.has(v.digest));
    if (!add.length && rec !== record) return;
    const next: CacheRecord = { ...rec, variants: [...(rec.variants ?? []), ...add.map((v) => ({ mediaType: v.mediaType, digest: v.digest, size: v.size }))] };
    await this.writeAtomic(this.recordPath(rec.key), JSON.stringify(next));
  }

  async explain(slot: string, parts: KeyParts): Promise<string | undefined> {
    let prev: KeyParts | undefined;
    try {
      prev = await readStoreJSON(this.slotPath(slot), keyPartsShape);
    } catch (e) {
      if (!(e instanceof StoreCorruptError)) throw e;
    }
    if (!prev) return 'no earlier build of this step';
    const why = explainMiss(prev, parts);
    return why.length ? why.join('; ') : undefined;
  }

  async builtBefore(slot: string): Promise<boolean> {
    // synchronous: asked before every COPY and ADD in turn, where a trip through the thread pool costs an event-loop turn
    return existsSync(this.slotPath(slot));
  }

  // The directories are the layout's (absolute, normalised) and the names are hex or base64url, so
  // a plain concatenation is the joined path; path.join normalised it again on every record lookup.
  private recordPath(key: Digest): string {
    return `${this.places.cacheRecords}${path.sep}${key.slice(7)}.json`;
  }

  private slotPath(slot: string): string {
    const h = Buffer.from(slot).toString('base64url');
    return `${this.places.cacheSlots}${path.sep}${h}.json`;
  }

  private async writeAtomic(file: string, data: string): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    await writeFileAtomic(file, Buffer.from(data), this.tmpDir);
  }
}

const layerShape = (v: unknown, what: string): { mediaType: string; digest: Digest; size: number } => {
  const o = objectShape(v, what);
  if (typeof o['mediaType'] !== 'string' || typeof o['digest'] !== 'string' || !isDigest(o['digest']) || typeof o['size'] !== 'number') {
    throw new ShapeError(`${what} is not a layer descriptor`);
  }
  return o as unknown as { mediaType: string; digest: Digest; size: number };
};

/** What get() and addVariants() read of a record: its version, key, layer and variants. */
const recordShape: Shape<CacheRecord> = (v) => {
  const o = objectShape(v, 'record');
  if (o['layer'] !== undefined) {
    const l = layerShape(o['layer'], 'layer') as { diffID?: unknown };
    if (typeof l.diffID !== 'string' || !isDigest(l.diffID)) throw new ShapeError('layer.diffID is not a digest');
  }
  if (o['variants'] !== undefined) {
    if (!Array.isArray(o['variants'])) throw new ShapeError('variants is not a list');
    o['variants'].forEach((x, i) => layerShape(x, `variants[${i}]`));
  }
  return o as unknown as CacheRecord;
};

const keyPartsShape: Shape<KeyParts> = (v) => objectShape(v, 'key parts') as unknown as KeyParts;

/**
 * A record file, shape-checked. A damaged one is a miss, not an error: the
 * cache is disposable, and the step's next run writes the record again.
 */
async function readRecord(file: string): Promise<CacheRecord | undefined> {
  try {
    return await readStoreJSON(file, recordShape);
  } catch (e) {
    if (e instanceof StoreCorruptError) return undefined;
    throw e;
  }
}
