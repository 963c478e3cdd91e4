import { open, readdir, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { isKilnError } from '../errors/index.js';
import type { Digest } from '../image/digest.js';
import { tryFlock } from './flock.js';
import { removeIdlePartials } from './partial-blob.js';
import type { Store } from './store.js';
import { liveWith, surveyStore, totalBytes, type CacheMountUsage, type RecordUsage, type StoreSurvey } from './usage.js';

/**
 * Garbage collection. Roots are every index.json entry (named or kept
 * unnamed), every sha256 digest mentioned anywhere in a JSON file under
 * `cache/records/` (the build cache's step records) or `cache/roots/` (where any
 * module may drop a file naming what it needs kept) — a manifest, a layer blob
 * or a diffID — and `extraRoots`. Everything reachable from a root
 * (index → manifests → config + layers) is kept; other blobs, their metadata
 * and snapshots of layers no kept image uses are deleted.
 *
 * Build-cache records are the only roots GC itself gives up: broken ones
 * always, others on request (`all`, `until`, `keepStorage`), least recently
 * used first. Whatever an image name, a kept unnamed image, `cache/roots/` or
 * an extra root reaches is never deleted, whatever the size limit says.
 * Prune runs with the store held exclusively, so no build is running.
 */

export interface PruneOptions {
  dryRun?: boolean;
  extraRoots?: Digest[];
  /** Wait this long for other kiln processes to let go of the store (default: fail at once). */
  lockTimeoutMs?: number;
  /** Also every build-cache record and every cache mount. */
  all?: boolean;
  /** Only records and cache mounts unused for longer than this (ms) may go; given alone, all of those go. */
  until?: number;
  /** Evict records (with `all`, cache mounts too) least recently used first until blobs + snapshots + cache mounts fit in this many bytes. */
  keepStorage?: number;
  /** The clock, in ms (default: now). */
  now?: number;
}

export interface PruneResult {
  /** Keys of the build-cache records removed: broken ones first, then least recently used first. */
  removedRecords: Digest[];
  removedBlobs: Digest[];
  removedSnapshots: string[];
  removedCacheMounts: string[];
  removedLogs: string[];
  /** Partial downloads (tmp/partial/<hex>) no running pull holds. */
  removedPartials: string[];
  /** Everything deleted: blobs, snapshots, cache mounts, logs, partial downloads and record files. */
  freedBytes: number;
  /** blobs + snapshots + cache mounts afterwards (with `dryRun`: what it would be). */
  finalBytes: number;
  /** `keepStorage` could not be met: what is left is held by images or roots GC may not touch. */
  overLimit?: boolean;
}

/** Logs this old go in a plain prune (they are for reading soon after a build, not for keeping). */
export const LOG_MAX_AGE_MS = 7 * 24 * 3600 * 1000;
/** The automatic cap when none is configured: this share of the store's file system… */
export const AUTO_GC_FRACTION = 0.1;
/** …but never less than this. */
export const AUTO_GC_MIN_BYTES = 2 * 1024 ** 3;

/** Which records and cache mounts go, and the store size that leaves. */
interface Plan {
  /** Broken records first, then in eviction order. */
  records: RecordUsage[];
  mounts: CacheMountUsage[];
  finalBytes: number;
  overLimit: boolean;
}

function planEviction(s: StoreSurvey, opts: PruneOptions, now: number): Plan {
  const idle = (lastUsed: number) => opts.until === undefined || now - lastUsed > opts.until;
  const evictRecords = Boolean(opts.all) || opts.until !== undefined || opts.keepStorage !== undefined;
  const evictMounts = Boolean(opts.all) || opts.until !== undefined;
  const gone = new Set<RecordUsage>(s.records.filter((r) => r.broken));
  let recordPool = evictRecords ? s.records.filter((r) => !r.broken && idle(r.lastUsed)) : [];
  const mountPool = evictMounts ? s.cacheMounts.filter((m) => idle(m.lastUsed)) : [];

  // Reference counts of what only records keep, so each eviction costs its own size, not a re-mark.
  const blobRefs = new Map<Digest, number>();
  const diffRefs = new Map<Digest, number>();
  const snapBytes = new Map<Digest, number>();
  for (const sn of s.snapshots) if (sn.diffID) snapBytes.set(sn.diffID, (snapBytes.get(sn.diffID) ?? 0) + sn.bytes);
  const ownBlobs = (r: RecordUsage) => [...r.reach.blobs].filter((b) => !s.pinned.blobs.has(b) && s.blobs.has(b));
  const ownDiffIDs = (r: RecordUsage) => [...r.reach.diffIDs].filter((d) => !s.pinned.diffIDs.has(d));
  for (const r of s.records) {
    if (gone.has(r)) continue;
    for (const b of ownBlobs(r)) blobRefs.set(b, (blobRefs.get(b) ?? 0) + 1);
    for (const d of ownDiffIDs(r)) diffRefs.set(d, (diffRefs.get(d) ?? 0) + 1);
  }
  let size = 0;
  for (const b of s.pinned.blobs) size += s.blobs.get(b) ?? 0;
  for (const b of blobRefs.keys()) size += s.blobs.get(b) ?? 0;
  for (const [d, n] of snapBytes) if (s.pinned.diffIDs.has(d) || diffRefs.has(d)) size += n;
  for (const m of s.cacheMounts) size += m.bytes;

  if (opts.keepStorage !== undefined) {
    // A record whose layer an image holds costs nothing; evicting it would only lose a cache hit.
    recordPool = recordPool.filter((r) => ownBlobs(r).length > 0 || ownDiffIDs(r).some((d) => snapBytes.has(d)));
  }
  const order: RecordUsage[] = [...gone];
  // Only the last reference to go frees the bytes.
  const release = (refs: Map<Digest, number>, bytes: Map<Digest, number>, keys: Iterable<Digest>) => {
    for (const k of keys) {
      const n = refs.get(k);
      if (n === undefined) continue;
      if (n > 1) refs.set(k, n - 1);
      else {
        refs.delete(k);
        size -= bytes.get(k) ?? 0;
      }
    }
  };
  const evictRecord = (r: RecordUsage) => {
    gone.add(r);
    order.push(r);
    release(blobRefs, s.blobs, r.reach.blobs);
    release(diffRefs, snapBytes, r.reach.diffIDs);
  };
  const goneMounts = new Set<CacheMountUsage>();
  const evictMount = (m: CacheMountUsage) => {
    goneMounts.add(m);
    size -= m.bytes;
  };

  type Victim = { lastUsed: number; id: string; evict: () => void };
  const pool: Victim[] = [
    ...recordPool.map((r) => ({ lastUsed: r.lastUsed, id: r.key, evict: () => evictRecord(r) })),
    ...mountPool.map((m) => ({ lastUsed: m.lastUsed, id: m.name, evict: () => evictMount(m) })),
  ].sort((a, b) => a.lastUsed - b.lastUsed || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const v of pool) {
    if (opts.keepStorage !== undefined && size <= opts.keepStorage) break;
    v.evict();
  }
  return {
    records: order,
    mounts: s.cacheMounts.filter((m) => goneMounts.has(m)),
    finalBytes: size,
    overLimit: opts.keepStorage !== undefined && size > opts.keepStorage,
  };
}

/** Deletes a cache mount unless some process still holds its lock (a `kiln run` outside any build, say). */
async function removeCacheMount(m: CacheMountUsage): Promise<boolean> {
  const lockPath = `${m.path}.lock`;
  const fh = await open(lockPath, 'a');
  try {
    if (!tryFlock(fh.fd, 'exclusive')) return false;
    await rm(m.path, { recursive: true, force: true });
    await rm(lockPath, { force: true });
    return true;
  } finally {
    await fh.close();
  }
}

async function pruneLocked(store: Store, opts: PruneOptions): Promise<PruneResult> {
  const now = opts.now ?? Date.now();
  // a dry run reads only; a real one remembers the snapshot sizes it measured
  const s = await surveyStore(store, opts.extraRoots, { remember: !opts.dryRun });
  const plan = planEviction(s, opts, now);
  const goneKeys = new Set(plan.records.map((r) => r.key));
  const live = liveWith(
    s,
    s.records.filter((r) => !goneKeys.has(r.key)),
  );
  const result: PruneResult = {
    removedRecords: [],
    removedBlobs: [],
    removedSnapshots: [],
    removedCacheMounts: [],
    removedLogs: [],
    removedPartials: [],
    freedBytes: 0,
    finalBytes: plan.finalBytes,
  };
  const dry = Boolean(opts.dryRun);

  // Records before the blobs they name: an interrupted prune leaves unreferenced blobs (swept next time), never records pointing at nothing.
  for (const r of plan.records) {
    if (!dry) await rm(r.path, { force: true });
    result.removedRecords.push(r.key);
    result.freedBytes += r.bytes;
  }
  for (const m of plan.mounts) {
    if (!dry && !(await removeCacheMount(m))) continue;
    result.removedCacheMounts.push(m.name);
    result.freedBytes += m.bytes;
  }
  // a crashed cache-mount creation; nobody is creating one while the store is ours
  for (const l of s.cacheMountLeftovers) if (!dry) await rm(l.path, { recursive: true, force: true });

  const logAge = opts.all ? -1 : (opts.until ?? LOG_MAX_AGE_MS);
  for (const l of s.logs) {
    if (now - l.mtime <= logAge) continue;
    if (!dry) await rm(l.path, { force: true });
    result.removedLogs.push(l.name);
    result.freedBytes += l.bytes;
  }

  // an interrupted pull's bytes; a download in progress holds its file's flock and stays
  for (const p of await removeIdlePartials(store.layout.partial, { dryRun: dry })) {
    result.removedPartials.push(p.name);
    result.freedBytes += p.bytes;
  }

  for (const [d, size] of s.blobs) {
    if (live.blobs.has(d)) continue;
    result.freedBytes += size;
    result.removedBlobs.push(d);
    if (!dry) await store.deleteBlob(d);
  }
  if (!dry) await store.forgetDiffIDBlobs(live.blobs);
  for (const sn of s.snapshots) {
    if (sn.diffID && live.diffIDs.has(sn.diffID)) continue;
    result.removedSnapshots.push(sn.name);
    result.freedBytes += sn.bytes;
    if (!dry) {
      await rm(`${sn.path}.diffid`, { force: true });
      await rm(sn.path, { recursive: true, force: true });
    }
  }
  if (!dry) {
    // markers whose directory is gone
    for (const name of await readdir(store.layout.snapshots)) {
      if (!name.endsWith('.diffid')) continue;
      const dir = join(store.layout.snapshots, name.slice(0, -'.diffid'.length));
      if (!(await stat(dir).catch(() => undefined))) await rm(join(store.layout.snapshots, name), { force: true });
    }
  }
  // mounts someone still held stay: count them in what is left
  const kept = plan.mounts.filter((m) => !result.removedCacheMounts.includes(m.name));
  for (const m of kept) result.finalBytes += m.bytes;
  if (plan.overLimit || (opts.keepStorage !== undefined && result.finalBytes > opts.keepStorage)) result.overLimit = true;
  return result;
}

/** Collects garbage (see the module comment); needs the store to itself, failing with STORE_LOCKED after `lockTimeoutMs`. */
export async function prune(store: Store, opts: PruneOptions = {}): Promise<PruneResult> {
  return store.withExclusive(() => pruneLocked(store, opts), opts.lockTimeoutMs ?? 0);
}

/**
 * The cap used when none is configured: a tenth of the file system holding
 * the store, at least 2 GiB — BuildKit's default share, and enough for a
 * few toolchain images on a small disk. Undefined when the size is unknown.
 */
export async function defaultKeepStorage(root: string): Promise<number | undefined> {
  try {
    const fs = await statfs(root);
    const total = Number(fs.blocks) * Number(fs.bsize);
    if (!Number.isFinite(total) || total <= 0) return undefined;
    return Math.max(AUTO_GC_MIN_BYTES, Math.floor(total * AUTO_GC_FRACTION));
  } catch {
    return undefined;
  }
}

/**
 * The automatic size cap, run at the end of a build: when blobs + snapshots +
 * cache mounts exceed `keepStorage` (default: `defaultKeepStorage`; 0
 * disables), evicts build-cache records least recently used first and sweeps.
 * Never waits: when another kiln process has the store open it does nothing,
 * as it does under the cap (both return undefined). Other failures throw; a
 * caller whose real work succeeded should report them as a warning.
 */
/** Sum of the blob files' sizes: one readdir and a stat per blob. */
async function blobBytes(store: Store): Promise<number> {
  let total = 0;
  for (const name of await readdir(store.layout.blobs).catch(() => [] as string[])) {
    total += (await stat(join(store.layout.blobs, name)).catch(() => undefined))?.size ?? 0;
  }
  return total;
}

export async function autoGc(store: Store, opts: { keepStorage?: number }): Promise<PruneResult | undefined> {
  if (opts.keepStorage === 0) return undefined;
  const cap = opts.keepStorage ?? (await defaultKeepStorage(store.root));
  if (cap === undefined) return undefined;
  // A full survey walks every snapshot; most builds end far under the cap, so
  // first a cheap bound: blobs counted exactly, snapshots estimated generously
  // (a layer rarely unpacks to more than 4× its blob). Cache mounts are not
  // evicted automatically, so they do not decide whether to start.
  if ((await blobBytes(store)) * 5 <= cap) return undefined;
  // measured without the exclusive lock: most builds end under the cap and must not disturb others
  // (after a build, which writes anyway: the snapshot sizes measured are kept for the next one)
  if (totalBytes(await surveyStore(store, [], { remember: true })) <= cap) return undefined;
  try {
    return await prune(store, { keepStorage: cap, lockTimeoutMs: 0 });
  } catch (e) {
    if (isKilnError(e) && e.code === 'STORE_LOCKED') return undefined;
    throw e;
  }
}
