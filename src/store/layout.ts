import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { digestHex, type Digest } from '../image/digest.js';
import { rootlessSession } from '../rootless/session.js';

/**
 * Where things live under a store root — every path below it is spelled here
 * and nowhere else. The root is an OCI image layout (oci-layout, index.json,
 * blobs/) so skopeo and umoci read it directly; the other entries are kiln's
 * own and ignored by those tools.
 */
export interface StoreLayout {
  root: string;
  ociLayout: string;
  index: string;
  blobs: string;
  /** In-flight writes and RUN scratch dirs; swept at open when no other process uses the store. */
  tmp: string;
  /** Resumable downloads; survive the sweep (for a while). */
  partial: string;
  /** Extracted layers, `s/<12 hex of diffID>`: short so many lowerdirs fit in overlay's one-page mount data. */
  snapshots: string;
  /** Build-cache records; sha256 digests named in JSON files under cache/records/ and cache/roots/ are GC roots. */
  cache: string;
  /** One JSON file per cache key (`<key hex>.json`). */
  cacheRecords: string;
  /** Extra GC roots the cache keeps (any JSON file below, any depth). */
  cacheRoots: string;
  /** Key parts last seen at each Dockerfile position (explains misses); not GC roots. */
  cacheSlots: string;
  /** Per-context file hash memo, one file per context directory. */
  contextHashes: string;
  locks: string;
  /** The shared/exclusive lock every process holds while it has the store open. */
  storeLock: string;
  /** Serialises rewrites of index.json. */
  indexLock: string;
  /** Serialises rewrites of files in meta/diffids/. */
  diffidsLock: string;
  /** Serialises rewrites of files in meta/origins/. */
  originsLock: string;
  /** diffID → blob descriptors, one small file each. */
  diffids: string;
  /** blob → registries/repositories it is known to exist in (for cross-repo mounts). */
  origins: string;
  /** blob → size, inode and ctime of the file the store hashed when it wrote it (verified-record.ts). */
  verified: string;
  /** Remembered snapshot sizes (`kiln df`, GC). */
  snapshotSizes: string;
  /** RUN --mount=type=cache directories, by id. */
  cacheMounts: string;
  /** Output of RUN steps, one file per step run. */
  logs: string;
  /** A published blob. */
  blob(digest: Digest): string;
  /** The blobs recorded for a diffID. */
  diffidFile(diffID: Digest): string;
  /** The registries a blob is known to exist in. */
  originFile(digest: Digest): string;
  /** The verified record of a blob. */
  verifiedFile(digest: Digest): string;
  /** The snapshot directory of a diffID; its marker is `<dir>.diffid`. */
  snapshot(diffID: Digest): string;
  /** Held while one process extracts or adopts a diffID's snapshot. */
  snapshotLock(diffID: Digest): string;
}

/** `s/<first 12 hex of the diffID>`. */
export function snapshotDirName(diffID: Digest): string {
  return digestHex(diffID).slice(0, 12);
}

export function storeLayout(root: string): StoreLayout {
  const r = resolve(root);
  const blobs = join(r, 'blobs', 'sha256');
  const snapshots = join(r, 's');
  const cache = join(r, 'cache');
  const locks = join(r, 'locks');
  const meta = join(r, 'meta');
  const diffids = join(meta, 'diffids');
  const origins = join(meta, 'origins');
  const verified = join(meta, 'verified');
  return {
    root: r,
    ociLayout: join(r, 'oci-layout'),
    index: join(r, 'index.json'),
    blobs,
    tmp: join(r, 'tmp'),
    partial: join(r, 'tmp', 'partial'),
    snapshots,
    cache,
    cacheRecords: join(cache, 'records'),
    cacheRoots: join(cache, 'roots'),
    cacheSlots: join(cache, 'slots'),
    contextHashes: join(cache, 'context-hashes'),
    locks,
    storeLock: join(locks, 'store'),
    indexLock: join(locks, 'index'),
    diffidsLock: join(locks, 'diffids'),
    originsLock: join(locks, 'origins'),
    diffids,
    origins,
    verified,
    snapshotSizes: join(meta, 'snapshot-sizes.json'),
    cacheMounts: join(r, 'cache-mounts'),
    logs: join(r, 'logs'),
    blob: (d) => join(blobs, digestHex(d)),
    diffidFile: (d) => join(diffids, digestHex(d)),
    originFile: (d) => join(origins, `${digestHex(d)}.json`),
    verifiedFile: (d) => join(verified, digestHex(d)),
    snapshot: (d) => join(snapshots, snapshotDirName(d)),
    snapshotLock: (d) => join(locks, `snap-${snapshotDirName(d)}`),
  };
}

/** `$KILN_ROOT`; else `/var/lib/kiln` as root; else `$XDG_DATA_HOME/kiln` or `~/.local/share/kiln`. */
export function defaultRoot(env: NodeJS.ProcessEnv = process.env, uid: number = process.getuid?.() ?? -1): string {
  if (env['KILN_ROOT']) return resolve(env['KILN_ROOT']);
  // root of kiln's own user namespace is still the user: its store stays in the user's home
  if (uid === 0 && rootlessSession() === undefined) return '/var/lib/kiln';
  const xdg = env['XDG_DATA_HOME'];
  return join(xdg && xdg.startsWith('/') ? xdg : join(env['HOME'] ?? homedir(), '.local', 'share'), 'kiln');
}

/**
 * Names of per-RUN scratch directories in tmp/ (`r<pid36>.<start36>.<seq>`,
 * see sandbox/scratch.ts). They may hold a mounted overlay and back a running
 * container, so only the sandbox's sweep removes them, after unmounting.
 */
export function isScratchName(name: string): boolean {
  return /^r[0-9a-z]+\.[0-9a-z]+\.[0-9a-z]+$/.test(name);
}
