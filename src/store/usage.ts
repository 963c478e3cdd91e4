import type { Dirent } from 'node:fs';
import { lstat, open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from '../image/digest.js';
import { isIndexMediaType } from '../image/media-types.js';
import type { ImageConfig } from '../image/types.js';
import { StoreCorruptError } from '../errors/index.js';
import { objectShape, parseJSONSafe, type Shape } from '../image/document-shapes.js';
import { writeFileAtomic } from './atomic-file.js';
import { readStoreJSON } from './json-file.js';
import { refDigest } from './ref-names.js';
import { listSnapshots } from './snapshots.js';
import type { Store } from './store.js';

export { parseSize, parseDuration, keepStorageSetting } from './size.js';

/**
 * Accounting of a store: what is on disk, what holds on to it, and what the
 * build cache alone keeps alive. `kiln df` prints it and garbage collection
 * decides from it, so the two always agree.
 *
 * Sizes are apparent sizes: the bytes of regular files plus symlink targets,
 * each inode once, directories not counted (as containerd's disk usage does),
 * so they do not depend on the file system's block size and a test can know
 * them exactly.
 */

/** JSON documents worth parsing while marking; layer blobs are bigger and never start with '{'. */
const MAX_DOC = 8 * 1024 * 1024;
const DIGEST_IN_TEXT = /sha256:[a-f0-9]{64}/g;
const RECORD_FILE = /^[a-f0-9]{64}\.json$/;

/** What a root keeps: blobs, and the diffIDs whose snapshots stay. */
export interface Reach {
  blobs: Set<Digest>;
  diffIDs: Set<Digest>;
}

export interface ImageUsage {
  ref?: string;
  digest: Digest;
  reach: Reach;
}

/** One build-cache record, `cache/records/<key hex>.json`. */
export interface RecordUsage {
  key: Digest;
  path: string;
  /** Size of the record file itself. */
  bytes: number;
  /** mtime in ms: the cache touches a record on every hit, so this is its last use. */
  lastUsed: number;
  layer?: { mediaType: string; digest: Digest; size: number; diffID: Digest };
  createdBy?: string;
  /** Its layer blob is gone: the cache treats it as a miss, so it is garbage. */
  broken: boolean;
  reach: Reach;
}

export interface SnapshotUsage {
  name: string;
  path: string;
  /** Undefined for an interrupted extraction. */
  diffID?: Digest;
  bytes: number;
}

export interface CacheMountUsage {
  name: string;
  path: string;
  bytes: number;
  /** Newest mtime in the tree (and of its lock file): the last time a RUN wrote to it. */
  lastUsed: number;
}

export interface FileUsage {
  name: string;
  path: string;
  bytes: number;
  mtime: number;
}

/** Everything garbage collection and `kiln df` need, gathered in one pass. */
export interface StoreSurvey {
  /** Every blob and its size. */
  blobs: Map<Digest, number>;
  images: ImageUsage[];
  /** What GC may never take: images, `cache/roots/`, JSON under `cache/records/` that is not a record, extra roots. */
  pinned: Reach;
  records: RecordUsage[];
  snapshots: SnapshotUsage[];
  cacheMounts: CacheMountUsage[];
  /** Half-created cache mounts (`<dir>.new-<pid>-<time>`) left by a crash. */
  cacheMountLeftovers: FileUsage[];
  logs: FileUsage[];
  tmpBytes: number;
}

function isNotFound(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

async function listDir(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (isNotFound(e)) return [];
    throw e;
  }
}

/** Apparent size and newest mtime of a tree; hard links count once. */
export async function treeUsage(path: string): Promise<{ bytes: number; newest: number }> {
  const seen = new Set<string>();
  let bytes = 0;
  let newest = 0;
  async function walk(p: string): Promise<void> {
    let st;
    try {
      st = await lstat(p);
    } catch (e) {
      if (isNotFound(e)) return;
      throw e;
    }
    newest = Math.max(newest, st.mtimeMs);
    if (st.isDirectory()) {
      for (const e of await listDir(p)) await walk(join(p, e.name));
      return;
    }
    if (!st.isFile() && !st.isSymbolicLink()) return;
    if (st.nlink > 1) {
      const id = `${st.dev}:${st.ino}`;
      if (seen.has(id)) return;
      seen.add(id);
    }
    bytes += st.size;
  }
  await walk(path);
  return { bytes, newest };
}

/** Computes what each root keeps, remembering answers: images and records share most of their content. */
class Reacher {
  private readonly memo = new Map<Digest, Promise<Reach>>();
  constructor(
    private readonly store: Store,
    private readonly blobs: Map<Digest, number>,
  ) {}

  reach(d: Digest): Promise<Reach> {
    let p = this.memo.get(d);
    if (!p) {
      p = this.compute(d);
      this.memo.set(d, p);
    }
    return p;
  }

  async union(roots: Iterable<Digest>): Promise<Reach> {
    const out: Reach = { blobs: new Set(), diffIDs: new Set() };
    for (const r of roots) addReach(out, await this.reach(r));
    return out;
  }

  private async compute(d: Digest): Promise<Reach> {
    const out: Reach = { blobs: new Set(), diffIDs: new Set() };
    const size = this.blobs.get(d);
    if (size === undefined) {
      // a diffID named by a cache record keeps the blob that holds it
      const blob = await this.store.blobForDiffID(d);
      if (blob) {
        out.diffIDs.add(d);
        out.blobs.add(blob.digest);
      }
      return out;
    }
    out.blobs.add(d);
    const doc = size <= MAX_DOC ? await this.readDoc(d) : undefined;
    if (!doc) {
      // an uncompressed layer is its own diffID: keep its snapshot too
      out.diffIDs.add(d);
      return out;
    }
    if (Array.isArray(doc.manifests) && (doc.mediaType === undefined || isIndexMediaType(doc.mediaType))) {
      for (const m of doc.manifests) if (m && typeof m.digest === 'string' && isDigest(m.digest)) addReach(out, await this.reach(m.digest));
    } else if (doc.config && Array.isArray(doc.layers)) {
      const cfg = doc.config.digest;
      if (typeof cfg === 'string' && isDigest(cfg)) {
        out.blobs.add(cfg);
        const text = await readFile(this.store.blobPath(cfg), 'utf8').catch(() => undefined);
        if (text) {
          try {
            for (const id of (parseJSONSafe(text) as ImageConfig).rootfs?.diff_ids ?? []) if (isDigest(id)) out.diffIDs.add(id);
          } catch {
            // a config that is not JSON keeps its layers but names no snapshots
          }
        }
      }
      for (const l of doc.layers) if (l && typeof l.digest === 'string' && isDigest(l.digest)) out.blobs.add(l.digest);
    }
    return out;
  }

  /** The blob as a JSON object, or undefined; only the first byte is read of a blob that is not JSON. */
  private async readDoc(d: Digest): Promise<DocShape | undefined> {
    const path = this.store.blobPath(d);
    try {
      const fh = await open(path, 'r');
      try {
        const first = Buffer.alloc(1);
        const { bytesRead } = await fh.read(first, 0, 1, 0);
        if (bytesRead !== 1 || first[0] !== 0x7b) return undefined;
      } finally {
        await fh.close();
      }
      const v: unknown = parseJSONSafe(await readFile(path, 'utf8'));
      return v && typeof v === 'object' ? v : undefined;
    } catch {
      return undefined;
    }
  }
}

interface DocShape {
  mediaType?: string;
  manifests?: Array<{ digest?: unknown }>;
  config?: { digest?: unknown };
  layers?: Array<{ digest?: unknown }>;
}

export function addReach(into: Reach, from: Reach): void {
  for (const b of from.blobs) into.blobs.add(b);
  for (const d of from.diffIDs) into.diffIDs.add(d);
}

function digestsIn(text: string): Digest[] {
  return [...new Set(text.match(DIGEST_IN_TEXT) ?? [])].filter(isDigest);
}

/** Parses a record file; undefined when it is not a version-1 record for the key its name says. */
function parseRecord(name: string, text: string): { key: Digest; layer?: RecordUsage['layer']; createdBy?: string } | undefined {
  let v: { version?: unknown; key?: unknown; layer?: RecordUsage['layer']; history?: { created_by?: unknown } };
  try {
    v = parseJSONSafe(text) as typeof v;
  } catch {
    return undefined;
  }
  const key = `sha256:${name.slice(0, 64)}`;
  if (!v || v.version !== 1 || v.key !== key || !isDigest(key)) return undefined;
  const out: { key: Digest; layer?: RecordUsage['layer']; createdBy?: string } = { key };
  if (v.layer && typeof v.layer.digest === 'string' && isDigest(v.layer.digest)) out.layer = v.layer;
  if (typeof v.history?.created_by === 'string') out.createdBy = v.history.created_by;
  return out;
}

/** Digests named in `*.json` files below `dir`, any depth, skipping `skip` (paths). */
async function rootsInTree(dir: string, skip: (path: string) => boolean, out: Set<Digest>): Promise<void> {
  for (const e of await listDir(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await rootsInTree(p, skip, out);
    else if (e.isFile() && e.name.endsWith('.json') && !skip(p)) {
      const text = await readFile(p, 'utf8').catch(() => '');
      for (const d of digestsIn(text)) out.add(d);
    }
  }
}

type KnownSizes = Record<string, { diffID: string; bytes: number }>;

const knownSizesShape: Shape<KnownSizes> = (v) => {
  const o = objectShape(v, 'snapshot sizes');
  const out: KnownSizes = {};
  for (const [name, e] of Object.entries(o)) {
    if (!/^[a-f0-9]{12}$/.test(name)) continue;
    const entry = objectShape(e, name);
    if (typeof entry['diffID'] === 'string' && typeof entry['bytes'] === 'number') out[name] = { diffID: entry['diffID'], bytes: entry['bytes'] };
  }
  return out;
};

/**
 * Snapshot sizes, remembered in meta/snapshot-sizes.json because snapshots
 * never change once their marker is written and walking them is the slow
 * part. Only `remember` (GC, which holds the store exclusively) writes the
 * file; `kiln df` reads it and measures what it lacks.
 */
async function snapshotSizes(store: Store, remember: boolean): Promise<SnapshotUsage[]> {
  const file = store.layout.snapshotSizes;
  let known: KnownSizes = {};
  try {
    known = (await readStoreJSON(file, knownSizesShape)) ?? {};
  } catch (e) {
    // a damaged file only costs a measurement: measure again (and, when remembering, replace it)
    if (!(e instanceof StoreCorruptError)) throw e;
  }
  const next: KnownSizes = {};
  let changed = false;
  const out: SnapshotUsage[] = [];
  for (const s of await listSnapshots(store.layout)) {
    const k = known[s.name];
    let bytes: number;
    if (s.diffID && k && k.diffID === s.diffID && typeof k.bytes === 'number') bytes = k.bytes;
    else {
      bytes = (await treeUsage(s.path)).bytes;
      changed = true;
    }
    // an interrupted extraction may still grow: never remember its size
    if (s.diffID) next[s.name] = { diffID: s.diffID, bytes };
    out.push({ ...s, bytes });
  }
  if (remember && (changed || Object.keys(known).length !== Object.keys(next).length)) {
    await writeFileAtomic(file, Buffer.from(JSON.stringify(next)), store.layout.tmp).catch(() => undefined);
  }
  return out;
}

async function filesIn(dir: string): Promise<FileUsage[]> {
  const out: FileUsage[] = [];
  for (const e of await listDir(dir)) {
    const path = join(dir, e.name);
    const st = await lstat(path).catch(() => undefined);
    if (st?.isFile()) out.push({ name: e.name, path, bytes: st.size, mtime: st.mtimeMs });
  }
  return out;
}

async function cacheMounts(dir: string): Promise<{ mounts: CacheMountUsage[]; leftovers: FileUsage[] }> {
  const mounts: CacheMountUsage[] = [];
  const leftovers: FileUsage[] = [];
  for (const e of await listDir(dir)) {
    if (!e.isDirectory()) continue;
    const path = join(dir, e.name);
    const u = await treeUsage(path);
    if (e.name.includes('.new-')) {
      leftovers.push({ name: e.name, path, bytes: u.bytes, mtime: u.newest });
      continue;
    }
    const lock = await stat(`${path}.lock`).catch(() => undefined);
    mounts.push({ name: e.name, path, bytes: u.bytes, lastUsed: Math.max(u.newest, lock?.mtimeMs ?? 0) });
  }
  return { mounts, leftovers };
}

/**
 * Gathers the store's usage. Read-only unless `remember` (then the snapshot
 * sizes measured are kept for next time); callers that act on it hold the
 * store exclusively.
 */
export async function surveyStore(store: Store, extraRoots: readonly Digest[] = [], opts: { remember?: boolean } = {}): Promise<StoreSurvey> {
  const blobs = new Map<Digest, number>();
  for (const d of await store.listBlobs()) {
    const size = await store.blobSize(d);
    if (size !== undefined) blobs.set(d, size);
  }
  const reacher = new Reacher(store, blobs);

  const images: ImageUsage[] = [];
  for (const e of await store.listEntries()) {
    let reach = await reacher.reach(e.descriptor.digest);
    // a name pulled by the digest of a multi-platform index keeps that index: it is what shows the name
    // true for the one platform's manifest (RefIndex.pins), so FROM name@digest still finds it offline
    const pinned = e.ref === undefined ? undefined : refDigest(e.ref);
    if (pinned !== undefined && pinned !== e.descriptor.digest && isDigest(pinned) && blobs.has(pinned)) reach = { blobs: new Set([...reach.blobs, pinned]), diffIDs: reach.diffIDs };
    images.push(e.ref === undefined ? { digest: e.descriptor.digest, reach } : { ref: e.ref, digest: e.descriptor.digest, reach });
  }

  const recordsDir = store.layout.cacheRecords;
  const records: RecordUsage[] = [];
  const recordPaths = new Set<string>();
  for (const e of await listDir(recordsDir)) {
    if (!e.isFile() || !RECORD_FILE.test(e.name)) continue;
    const path = join(recordsDir, e.name);
    const [text, st] = await Promise.all([readFile(path, 'utf8').catch(() => undefined), stat(path).catch(() => undefined)]);
    if (text === undefined || !st) continue;
    const rec = parseRecord(e.name, text);
    if (!rec) continue;
    recordPaths.add(path);
    const reach = await reacher.union(digestsIn(text));
    // the cache snapshots a record's layer by its diffID even when the layer is stored uncompressed
    if (rec.layer && isDigest(rec.layer.diffID)) reach.diffIDs.add(rec.layer.diffID);
    records.push({
      key: rec.key,
      path,
      bytes: st.size,
      lastUsed: st.mtimeMs,
      ...(rec.layer ? { layer: rec.layer } : {}),
      ...(rec.createdBy !== undefined ? { createdBy: rec.createdBy } : {}),
      broken: rec.layer !== undefined && !blobs.has(rec.layer.digest),
      reach,
    });
  }

  const pinnedRoots = new Set<Digest>(extraRoots);
  for (const dir of [store.layout.cacheRecords, store.layout.cacheRoots]) await rootsInTree(dir, (p) => recordPaths.has(p), pinnedRoots);
  const pinned = await reacher.union(pinnedRoots);
  for (const i of images) addReach(pinned, i.reach);

  const { mounts, leftovers } = await cacheMounts(store.layout.cacheMounts);
  const logs = await filesIn(store.layout.logs);
  const tmpBytes = (await treeUsage(store.layout.tmp)).bytes;
  return { blobs, images, pinned, records, snapshots: await snapshotSizes(store, opts.remember ?? false), cacheMounts: mounts, cacheMountLeftovers: leftovers, logs, tmpBytes };
}

/** What is kept when only `records` stay (besides everything pinned). */
export function liveWith(survey: StoreSurvey, records: Iterable<RecordUsage>): Reach {
  const live: Reach = { blobs: new Set(survey.pinned.blobs), diffIDs: new Set(survey.pinned.diffIDs) };
  for (const r of records) addReach(live, r.reach);
  return live;
}

function blobBytes(survey: StoreSurvey, digests: Iterable<Digest>): number {
  let n = 0;
  for (const d of digests) n += survey.blobs.get(d) ?? 0;
  return n;
}

function snapshotBytes(survey: StoreSurvey, live: Reach | undefined): number {
  let n = 0;
  for (const s of survey.snapshots) if (!live || (s.diffID !== undefined && live.diffIDs.has(s.diffID))) n += s.bytes;
  return n;
}

/** The size `--keep-storage` bounds: blobs + snapshots + cache mounts. */
export function totalBytes(survey: StoreSurvey): number {
  return blobBytes(survey, survey.blobs.keys()) + snapshotBytes(survey, undefined) + survey.cacheMounts.reduce((n, m) => n + m.bytes, 0);
}

// ------------------------------------------------------------------ kiln df

export interface DfImage {
  ref?: string;
  digest: Digest;
  /** All blobs the image reaches. */
  bytes: number;
  /** Of those, blobs another image also reaches. */
  sharedBytes: number;
  uniqueBytes: number;
}

export interface DfRecord {
  key: Digest;
  lastUsed: string;
  layer?: Digest;
  /** The layer's size when the record's layer is in the store. */
  layerBytes: number;
  /** An image uses the same layer: dropping the record frees nothing. */
  sharedWithImage: boolean;
  broken: boolean;
  createdBy?: string;
}

export interface DfCacheMount {
  name: string;
  bytes: number;
  lastUsed: string;
}

/**
 * `kiln df`. The rows blobs-of-images, cache-only blobs, unreferenced blobs,
 * snapshots and cache mounts partition `totalBytes`; logs and tmp are extra.
 * `reclaimableBytes` is what `kiln prune --all` would free of each kind.
 */
export interface StoreUsageReport {
  root: string;
  /** blobs + snapshots + cache mounts: what `--keep-storage` and the automatic cap measure. */
  totalBytes: number;
  images: { count: number; tagged: number; untagged: number; bytes: number; sharedBytes: number; uniqueBytes: number; reclaimableBytes: number; list?: DfImage[] };
  buildCache: {
    records: number;
    /** Records whose layer is gone (a plain `kiln prune` removes them). */
    brokenRecords: number;
    /** Layer blobs only the build cache holds. */
    bytes: number;
    /** Layer bytes the cache shares with images (already counted under images). */
    sharedBytes: number;
    recordFileBytes: number;
    reclaimableBytes: number;
    list?: DfRecord[];
  };
  snapshots: { count: number; bytes: number; imageBytes: number; cacheOnlyBytes: number; unusedBytes: number; reclaimableBytes: number };
  cacheMounts: { count: number; bytes: number; reclaimableBytes: number; list?: DfCacheMount[] };
  logs: { count: number; bytes: number; reclaimableBytes: number };
  tmp: { bytes: number; reclaimableBytes: number };
  /** Blobs nothing reaches (a plain `kiln prune` frees them). */
  unreferenced: { blobs: number; bytes: number; reclaimableBytes: number };
}

export function usageReport(store: Store, survey: StoreSurvey, opts: { verbose?: boolean } = {}): StoreUsageReport {
  const imageUse = new Map<Digest, number>();
  for (const i of survey.images) for (const b of i.reach.blobs) if (survey.blobs.has(b)) imageUse.set(b, (imageUse.get(b) ?? 0) + 1);
  const imageBlobs = new Set(imageUse.keys());
  const sharedImageBlobs = [...imageUse].filter(([, n]) => n > 1).map(([d]) => d);
  const imageBytes = blobBytes(survey, imageBlobs);
  const sharedBytes = blobBytes(survey, sharedImageBlobs);

  const pinnedOnly = liveWith(survey, []);
  const all = liveWith(survey, survey.records);
  const cacheOnly = [...all.blobs].filter((b) => !pinnedOnly.blobs.has(b) && survey.blobs.has(b));
  const cacheShared = new Set<Digest>();
  for (const r of survey.records) for (const b of r.reach.blobs) if (pinnedOnly.blobs.has(b) && survey.blobs.has(b)) cacheShared.add(b);
  const unreferenced = [...survey.blobs.keys()].filter((b) => !all.blobs.has(b));
  // pinned blobs that no image reaches (cache/roots, extra roots) are reported with the build cache
  const otherPinned = [...pinnedOnly.blobs].filter((b) => !imageBlobs.has(b) && survey.blobs.has(b));
  const cacheBytes = blobBytes(survey, cacheOnly) + blobBytes(survey, otherPinned);

  const imageDiffIDs = new Set<Digest>();
  for (const i of survey.images) for (const d of i.reach.diffIDs) imageDiffIDs.add(d);
  let snapImage = 0;
  let snapCache = 0;
  let snapUnused = 0;
  for (const s of survey.snapshots) {
    if (s.diffID && imageDiffIDs.has(s.diffID)) snapImage += s.bytes;
    else if (s.diffID && all.diffIDs.has(s.diffID)) snapCache += s.bytes;
    else snapUnused += s.bytes;
  }
  const mountBytes = survey.cacheMounts.reduce((n, m) => n + m.bytes, 0);
  const logBytes = survey.logs.reduce((n, l) => n + l.bytes, 0);
  const recordFileBytes = survey.records.reduce((n, r) => n + r.bytes, 0);
  const iso = (ms: number) => new Date(ms).toISOString();

  const report: StoreUsageReport = {
    root: store.root,
    totalBytes: totalBytes(survey),
    images: {
      count: survey.images.length,
      tagged: survey.images.filter((i) => i.ref !== undefined).length,
      untagged: survey.images.filter((i) => i.ref === undefined).length,
      bytes: imageBytes,
      sharedBytes,
      uniqueBytes: imageBytes - sharedBytes,
      reclaimableBytes: 0,
    },
    buildCache: {
      records: survey.records.length,
      brokenRecords: survey.records.filter((r) => r.broken).length,
      bytes: cacheBytes,
      sharedBytes: blobBytes(survey, cacheShared),
      recordFileBytes,
      reclaimableBytes: blobBytes(survey, cacheOnly),
    },
    snapshots: {
      count: survey.snapshots.length,
      bytes: snapImage + snapCache + snapUnused,
      imageBytes: snapImage,
      cacheOnlyBytes: snapCache,
      unusedBytes: snapUnused,
      reclaimableBytes: snapCache + snapUnused,
    },
    cacheMounts: { count: survey.cacheMounts.length, bytes: mountBytes, reclaimableBytes: mountBytes },
    logs: { count: survey.logs.length, bytes: logBytes, reclaimableBytes: logBytes },
    tmp: { bytes: survey.tmpBytes, reclaimableBytes: 0 },
    unreferenced: { blobs: unreferenced.length, bytes: blobBytes(survey, unreferenced), reclaimableBytes: blobBytes(survey, unreferenced) },
  };
  if (opts.verbose) {
    report.images.list = survey.images.map((i) => {
      const mine = [...i.reach.blobs].filter((b) => survey.blobs.has(b));
      const bytes = blobBytes(survey, mine);
      const shared = blobBytes(
        survey,
        mine.filter((b) => (imageUse.get(b) ?? 0) > 1),
      );
      return { ...(i.ref !== undefined ? { ref: i.ref } : {}), digest: i.digest, bytes, sharedBytes: shared, uniqueBytes: bytes - shared };
    });
    report.buildCache.list = [...survey.records]
      .sort((a, b) => b.lastUsed - a.lastUsed || a.key.localeCompare(b.key))
      .map((r) => ({
        key: r.key,
        lastUsed: iso(r.lastUsed),
        ...(r.layer ? { layer: r.layer.digest } : {}),
        layerBytes: r.layer ? (survey.blobs.get(r.layer.digest) ?? 0) : 0,
        sharedWithImage: r.layer !== undefined && pinnedOnly.blobs.has(r.layer.digest),
        broken: r.broken,
        ...(r.createdBy !== undefined ? { createdBy: r.createdBy } : {}),
      }));
    report.cacheMounts.list = survey.cacheMounts.map((m) => ({ name: m.name, bytes: m.bytes, lastUsed: iso(m.lastUsed) }));
  }
  return report;
}

/** `kiln df` as data. */
export async function storeUsage(store: Store, opts: { verbose?: boolean } = {}): Promise<StoreUsageReport> {
  return usageReport(store, await surveyStore(store), opts);
}
