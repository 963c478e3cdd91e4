import { mkdir, readFile, utimes } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { Digest } from '../image/digest.js';
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
  get(key: Digest): Promise<CacheRecord | undefined>;
  put(record: CacheRecord, slot: string, parts: KeyParts): Promise<void>;
  /** Adds blobs of `record`'s layer in other compressions to the local record (creating it from `record` when absent). */
  addVariants(record: CacheRecord, variants: Array<{ mediaType: string; digest: Digest; size: number }>): Promise<void>;
  /** Why `parts` misses compared with what the same Dockerfile position produced last time. */
  explain(slot: string, parts: KeyParts): Promise<string | undefined>;
}

/**
 * Step records under `<root>/cache/records/<key hex>.json`, one small file per
 * key written atomically; `cache/slots/` remembers the key parts last seen at
 * each Dockerfile position so a miss can be explained.
 */
export class StoreCacheIndex implements CacheIndex {
  constructor(
    private readonly dir: string,
    private readonly tmpDir: string,
    private readonly blobExists: (d: Digest) => Promise<boolean>,
  ) {}

  async get(key: Digest): Promise<CacheRecord | undefined> {
    let rec: CacheRecord;
    try {
      rec = JSON.parse(await readFile(this.recordPath(key), 'utf8')) as CacheRecord;
    } catch {
      return undefined;
    }
    if (rec.version !== 1 || rec.key !== key) return undefined;
    if (rec.layer && !(await this.blobExists(rec.layer.digest))) {
      // the layer in another compression serves as well; a record whose every blob was pruned is a miss, not an error
      let alt: { mediaType: string; digest: Digest; size: number } | undefined;
      for (const v of rec.variants ?? []) if (await this.blobExists(v.digest)) { alt = v; break; }
      if (!alt) return undefined;
      rec = { ...rec, layer: { mediaType: alt.mediaType, digest: alt.digest, size: alt.size, diffID: rec.layer.diffID } };
    }
    // the record's mtime is its last use: garbage collection evicts the least recently used first
    const now = new Date();
    await utimes(this.recordPath(key), now, now).catch(() => {});
    return rec;
  }

  async put(record: CacheRecord, slot: string, parts: KeyParts): Promise<void> {
    await this.writeAtomic(this.recordPath(record.key), JSON.stringify(record));
    await this.writeAtomic(this.slotPath(slot), JSON.stringify(parts));
  }

  async addVariants(record: CacheRecord, variants: Array<{ mediaType: string; digest: Digest; size: number }>): Promise<void> {
    if (!record.layer) return;
    let rec: CacheRecord = record;
    try {
      const onDisk = JSON.parse(await readFile(this.recordPath(record.key), 'utf8')) as CacheRecord;
      if (onDisk.version === 1 && onDisk.key === record.key && onDisk.layer?.diffID === record.layer.diffID) rec = onDisk;
    } catch {
      // not local yet (an imported record): it becomes one
    }
    const have = new Set([rec.layer!.digest, ...(rec.variants ?? []).map((v) => v.digest)]);
    const add = variants.filter((v) => !have.has(v.digest));
    if (!add.length && rec !== record) return;
    const next: CacheRecord = { ...rec, variants: [...(rec.variants ?? []), ...add.map((v) => ({ mediaType: v.mediaType, digest: v.digest, size: v.size }))] };
    await this.writeAtomic(this.recordPath(rec.key), JSON.stringify(next));
  }

  async explain(slot: string, parts: KeyParts): Promise<string | undefined> {
    let prev: KeyParts;
    try {
      prev = JSON.parse(await readFile(this.slotPath(slot), 'utf8')) as KeyParts;
    } catch {
      return 'no earlier build of this step';
    }
    const why = explainMiss(prev, parts);
    return why.length ? why.join('; ') : undefined;
  }

  private recordPath(key: Digest): string {
    return path.join(this.dir, 'records', `${key.slice(7)}.json`);
  }

  private slotPath(slot: string): string {
    const h = Buffer.from(slot).toString('base64url');
    return path.join(this.dir, 'slots', `${h}.json`);
  }

  private async writeAtomic(file: string, data: string): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    await mkdir(this.tmpDir, { recursive: true });
    await writeFileAtomic(file, Buffer.from(data), this.tmpDir);
  }
}
