import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, readdir, lstat, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { KilnError } from '../errors/index.js';
import { openLockFile, tryFlock, unflock, waitFlock } from '../store/flock.js';
import { storeLayout } from '../store/layout.js';
import { makeStoreDirs } from '../store/store-dirs.js';

/**
 * `RUN --mount=type=cache` directories, persisted under `<root>/cache-mounts/`
 * and keyed by id, never part of a layer. Sharing follows BuildKit:
 * `shared` — any number of RUNs at once; `locked` — one at a time, others
 * wait; `private` — a busy cache makes the RUN use another instance
 * (`<name>~1`, `~2`, …, themselves persisted). Locks are flock(2) on a file
 * next to the directory, so a killed process releases them.
 */

export type CacheSharing = 'shared' | 'private' | 'locked';

export interface CacheMountRequest {
  id: string;
  sharing?: CacheSharing;
  /** Applied when the cache directory is created (BuildKit: 0755, 0:0). */
  mode?: number;
  uid?: number;
  gid?: number;
  /** A directory whose contents seed a new cache (`from=`/`source=`, resolved and pinned by the caller). */
  seedFrom?: string;
  /** What the seed is (the source stage's key and subpath), not where it is mounted this time: part of the cache's name. */
  seedKey?: string;
}

export interface AcquiredCache {
  dir: string;
  release(): Promise<void>;
}

/**
 * A readable, collision-free directory name for a cache id (ids are often
 * paths like /root/.cache/go-build). A seeded cache is also named by its
 * seed's identity, like BuildKit's id + source ref: never by the host path
 * the seed happens to be mounted at, which changes with every build.
 */
export function cacheDirName(id: string, seedKey?: string): string {
  const readable = id.replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '').slice(0, 60) || 'cache';
  const hash = createHash('sha256').update(id).update('\0').update(seedKey ?? '').digest('hex').slice(0, 12);
  return `${readable}-${hash}`;
}

export function cacheMountsRoot(storeRoot: string): string {
  return storeLayout(storeRoot).cacheMounts;
}

/**
 * Whether the cache directory `p` is there: a real directory, never a symlink. Nothing of kiln's
 * makes a link there, but an imported cache artifact names the directories it restores: a link
 * planted as a cache would be handed to runc as the mount's source and mount the host directory
 * it points at, writable, into every RUN using that cache.
 */
async function exists(p: string): Promise<boolean> {
  let st;
  try {
    st = await lstat(p);
  } catch {
    return false;
  }
  if (!st.isDirectory()) throw new KilnError('SANDBOX', `cache mount directory ${p} is not a directory (${st.isSymbolicLink() ? 'a symlink' : 'another kind of file'}); remove it, or run \`kiln prune\``);
  return true;
}

/**
 * Whether `name` can be a cache directory in `cache-mounts/`: the shape cacheDirName gives (a
 * readable part, a dash and 12 hex digits; `~N` for a private cache's other instance). For names
 * that come from outside, an imported cache artifact: `.` or `..` would name the folder itself or
 * the store, and a `.lock` or `.new-` name one of kiln's own files.
 */
export function isCacheDirName(name: string): boolean {
  return /^[A-Za-z0-9-][A-Za-z0-9._-]{0,59}-[0-9a-f]{12}(?:~[1-9][0-9]{0,5})?$/.test(name) && !name.includes('.new-');
}

async function copyTree(from: string, to: string): Promise<void> {
  // cp -a keeps owners, modes, links and xattrs, which fs.cp does not
  await new Promise<void>((resolve, reject) => {
    const child = spawn('cp', ['-a', '--', `${from}/.`, `${to}/`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new KilnError('SANDBOX', `seeding cache mount from ${from} failed: ${err.trim()}`))));
  });
}

/** Creates the cache dir atomically (a half-seeded cache is never visible under its name). */
async function ensureDir(dir: string, req: CacheMountRequest): Promise<void> {
  if (await exists(dir)) return;
  const staging = `${dir}.new-${process.pid}-${Date.now()}`;
  await mkdir(staging, { recursive: true });
  try {
    if (req.seedFrom) await copyTree(req.seedFrom, staging);
    await chmod(staging, req.mode ?? 0o755);
    await chown(staging, req.uid ?? 0, req.gid ?? 0);
    await rename(staging, dir);
  } catch (e) {
    await rm(staging, { recursive: true, force: true });
    // lost a race with another creator: theirs is as good as ours
    if (await exists(dir)) return;
    throw e;
  }
}

export async function acquireCache(storeRoot: string, req: CacheMountRequest, signal?: AbortSignal): Promise<AcquiredCache> {
  const layout = storeLayout(storeRoot);
  const root = layout.cacheMounts;
  makeStoreDirs(layout, root);
  const base = cacheDirName(req.id, req.seedKey);
  const sharing = req.sharing ?? 'shared';

  const lockAndUse = async (name: string, fh: FileHandle): Promise<AcquiredCache> => {
    const dir = join(root, name);
    await ensureDir(dir, req);
    return {
      dir,
      release: async () => {
        try {
          unflock(fh.fd);
        } finally {
          await fh.close();
        }
      },
    };
  };

  if (sharing === 'private') {
    for (let i = 0; ; i++) {
      const name = i === 0 ? base : `${base}~${i}`;
      const fh = await openLockFile(join(root, `${name}.lock`));
      if (tryFlock(fh.fd, 'exclusive')) return lockAndUse(name, fh);
      await fh.close();
    }
  }
  const fh = await openLockFile(join(root, `${base}.lock`));
  try {
    await waitFlock(fh.fd, sharing === 'locked' ? 'exclusive' : 'shared', { what: `cache mount ${req.id}`, ...(signal ? { signal } : {}) });
  } catch (e) {
    await fh.close();
    throw e;
  }
  return lockAndUse(base, fh);
}

/**
 * Runs `fn` on the cache directory `name` while no RUN uses it: holding its lock exclusively, so
 * no RUN (of this process or another) takes it meanwhile. Undefined, without calling `fn`, when a
 * RUN holds it now. For reading a cache as a whole tree (exporting it): a RUN using the cache could
 * otherwise swap a directory for a symlink to a host directory between the walk's lstat and its
 * reads, and the host's files would be read into the export.
 */
export async function withIdleCache<T>(storeRoot: string, name: string, fn: (dir: string) => Promise<T>): Promise<T | undefined> {
  const root = cacheMountsRoot(storeRoot);
  const fh = await openLockFile(join(root, `${name}.lock`));
  try {
    if (!tryFlock(fh.fd, 'exclusive')) return undefined;
    try {
      return await fn(join(root, name));
    } finally {
      unflock(fh.fd);
    }
  } finally {
    await fh.close();
  }
}

/** Ids of the caches present, for `kiln prune`-style listings. */
export async function listCacheDirs(storeRoot: string): Promise<string[]> {
  try {
    return (await readdir(cacheMountsRoot(storeRoot))).filter((n) => !n.endsWith('.lock') && !n.includes('.new-'));
  } catch {
    return [];
  }
}
