import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreCorruptError } from '../errors/index.js';
import { canonicalBytes } from '../image/canonical-json.js';
import { isDigest, type Digest } from '../image/digest.js';
import { arrayShape, descriptorShape, objectShape, stringShape, type Shape } from '../image/document-shapes.js';
import { MediaType } from '../image/media-types.js';
import type { Descriptor } from '../image/types.js';
import { writeFileAtomic } from './atomic-file.js';
import { withFileLock } from './flock.js';
import { readStoreJSON } from './json-file.js';
import type { StoreLayout } from './layout.js';

export interface BlobOrigin {
  registry: string;
  repository: string;
}

/** One blob known to hold a diffID's content; `verified` when kiln hashed it itself. */
interface DiffIDEntry extends Descriptor {
  verified?: boolean;
}

/** A diffID file: a list of blob descriptors (an older store wrote a single one). */
const diffIDFileShape: Shape<DiffIDEntry[]> = (v) => {
  const list = Array.isArray(v) ? v : [v];
  return list.map((d, i) => {
    const o = descriptorShape(d, `[${i}]`) as DiffIDEntry;
    const out: DiffIDEntry = { mediaType: o.mediaType, digest: o.digest, size: o.size };
    if ((o as { verified?: unknown }).verified === true) out.verified = true;
    return out;
  });
};

const originsShape: Shape<BlobOrigin[]> = (v) =>
  arrayShape(v, 'origins').map((e, i) => {
    const o = objectShape(e, `[${i}]`);
    return { registry: stringShape(o['registry'], `[${i}].registry`), repository: stringShape(o['repository'], `[${i}].repository`) };
  });

/** For writers under the lock only: they rewrite the whole file, so a damaged one is repaired, not trusted. */
async function orEmptyIfDamaged<T>(read: Promise<T[]>): Promise<T[]> {
  try {
    return await read;
  } catch (e) {
    if (e instanceof StoreCorruptError) return [];
    throw e;
  }
}

/**
 * What the store knows about blobs beyond their bytes, one small file each
 * under meta/: which blobs hold a diffID's content (so a snapshot can be made
 * from a diffID alone and a layer found in another compression), and which
 * registries a blob exists in (so a push can mount it). Rewrites are atomic
 * and serialised by a lock per kind; reads take no lock and never write.
 */
export class BlobMetadata {
  constructor(
    private readonly layout: StoreLayout,
    private readonly hasBlob: (d: Digest) => Promise<boolean>,
    private readonly blobSize: (d: Digest) => Promise<number | undefined>,
  ) {}

  // ---------------------------------------------------------------- diffIDs

  /**
   * Remembers that `blob` holds the layer with `diffID`. One file per diffID
   * lists every known blob, first recorded first; blobs no longer in the store
   * drop out when the list is next written. `verified` says kiln itself hashed
   * the blob's content to `diffID` (it wrote, extracted or re-compressed it);
   * a pair read from a manifest is only a claim.
   */
  async recordDiffID(diffID: Digest, blob: Descriptor, opts: { verified?: boolean } = {}): Promise<void> {
    const path = this.layout.diffidFile(diffID);
    const settled = (list: DiffIDEntry[]) => list.some((d) => d.digest === blob.digest && (d.verified || !opts.verified));
    // the common case (every image written records its layers again) writes nothing
    if (settled(await orEmptyIfDamaged(this.readDiffIDFile(path)))) return;
    await withFileLock(this.layout.diffidsLock, async () => {
      // a damaged record is replaced: what is being recorded is known to be true
      const list = await orEmptyIfDamaged(this.readDiffIDFile(path));
      if (settled(list)) return;
      const next: DiffIDEntry[] = [];
      let seen = false;
      for (const d of list) {
        if (d.digest === blob.digest) {
          seen = true;
          next.push({ ...d, verified: true });
        } else if (await this.hasBlob(d.digest)) next.push(d);
      }
      if (!seen) next.push({ mediaType: blob.mediaType, digest: blob.digest, size: blob.size, ...(opts.verified ? { verified: true } : {}) });
      await writeFileAtomic(path, canonicalBytes(next), this.layout.tmp);
    });
  }

  private async readDiffIDFile(path: string): Promise<DiffIDEntry[]> {
    return (await readStoreJSON(path, diffIDFileShape)) ?? [];
  }

  /** The stored blob whose uncompressed content has `diffID`, if known and present. */
  async blobForDiffID(diffID: Digest): Promise<Descriptor | undefined> {
    return (await this.blobsForDiffID(diffID))[0];
  }

  /**
   * Every stored blob (one per compression) whose uncompressed content has
   * `diffID`, first recorded first; with `verifiedOnly`, only those kiln hashed
   * itself — what may stand in for a layer in another image.
   */
  async blobsForDiffID(diffID: Digest, opts: { verifiedOnly?: boolean } = {}): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const d of await this.readDiffIDFile(this.layout.diffidFile(diffID))) {
      if (opts.verifiedOnly && !d.verified) continue;
      if (await this.hasBlob(d.digest)) out.push({ mediaType: d.mediaType, digest: d.digest, size: d.size });
    }
    // an uncompressed layer is its own diffID: its name proves the pair
    if (!out.some((d) => d.digest === diffID)) {
      const size = await this.blobSize(diffID);
      if (size !== undefined) out.push({ mediaType: MediaType.OCI_LAYER, digest: diffID, size });
    }
    return out;
  }

  /** All recorded diffID → blob pairs (one pair per blob). */
  async listDiffIDs(): Promise<Array<{ diffID: Digest; blob: Descriptor }>> {
    const out: Array<{ diffID: Digest; blob: Descriptor }> = [];
    for (const name of await readdir(this.layout.diffids)) {
      const diffID = `sha256:${name}`;
      if (!isDigest(diffID)) continue;
      for (const d of await this.readDiffIDFile(this.layout.diffidFile(diffID))) out.push({ diffID, blob: { mediaType: d.mediaType, digest: d.digest, size: d.size } });
    }
    return out;
  }

  /**
   * Drops diffID records of blobs that are not `live`, and records that cannot
   * be read: they are an index kiln rebuilds as it writes and reads images
   * (GC only; callers hold the store exclusively).
   */
  async forgetDiffIDBlobs(live: ReadonlySet<Digest>): Promise<void> {
    for (const name of await readdir(this.layout.diffids)) {
      const path = join(this.layout.diffids, name);
      let list: DiffIDEntry[];
      try {
        list = await this.readDiffIDFile(path);
      } catch (e) {
        if (!(e instanceof StoreCorruptError)) throw e;
        await rm(path, { force: true });
        continue;
      }
      const keep = list.filter((d) => live.has(d.digest));
      if (keep.length === list.length) continue;
      if (keep.length === 0) await rm(path, { force: true });
      else await writeFileAtomic(path, canonicalBytes(keep), this.layout.tmp);
    }
  }

  // ---------------------------------------------------------------- blob origins

  /** Notes that `digest` exists in `registry/repository` (a later push may mount it from there). */
  async recordBlobOrigin(digest: Digest, registry: string, repository: string): Promise<void> {
    const path = this.layout.originFile(digest);
    await withFileLock(this.layout.originsLock, async () => {
      const list = await orEmptyIfDamaged(this.blobOrigins(digest));
      const rest = list.filter((o) => !(o.registry === registry && o.repository === repository));
      // most recent first, bounded: mounts try a few candidates at most
      const next = [{ registry, repository }, ...rest].slice(0, 16);
      await writeFileAtomic(path, canonicalBytes(next), this.layout.tmp);
    });
  }

  async blobOrigins(digest: Digest): Promise<BlobOrigin[]> {
    return (await readStoreJSON(this.layout.originFile(digest), originsShape)) ?? [];
  }

  /** Forgets a deleted blob's origins (GC only). */
  async forgetBlob(digest: Digest): Promise<void> {
    await rm(this.layout.originFile(digest), { force: true });
  }

  /**
   * Metadata files that cannot be read: for fsck. GC removes them (they
   * only speed things up); reading one in a build fails with its name.
   */
  async damaged(): Promise<StoreCorruptError[]> {
    const out: StoreCorruptError[] = [];
    const check = async (dir: string, shape: Shape<unknown>): Promise<void> => {
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        await readStoreJSON(join(dir, name), shape).catch((e: unknown) => {
          if (e instanceof StoreCorruptError) out.push(e);
          else throw e;
        });
      }
    };
    await check(this.layout.diffids, diffIDFileShape);
    await check(this.layout.origins, originsShape);
    return out;
  }
}
