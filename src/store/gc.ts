import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isDigest, type Digest } from '../image/digest.js';
import { isIndexMediaType } from '../image/media-types.js';
import type { ImageConfig } from '../image/types.js';
import { listSnapshots } from './snapshots.js';
import type { Store } from './store.js';

/**
 * Garbage collection. Roots are every index.json entry (named or kept
 * unnamed), every sha256 digest mentioned anywhere in a JSON file under
 * `cache/records/` (the build cache's step records) or `cache/roots/` (where any
 * module may drop a file naming what it needs kept) — a manifest, a layer blob
 * or a diffID — and `extraRoots`. Everything reachable
 * from a root (index → manifests → config + layers) is kept; other blobs, their
 * metadata and snapshots of layers no kept image uses are deleted.
 */

export interface PruneOptions {
  dryRun?: boolean;
  extraRoots?: Digest[];
  /** Wait this long for other kiln processes to let go of the store (default: fail at once). */
  lockTimeoutMs?: number;
}

export interface PruneResult {
  removedBlobs: Digest[];
  removedSnapshots: string[];
  freedBytes: number;
}

const DIGEST_IN_TEXT = /sha256:[a-f0-9]{64}/g;
/** JSON documents worth parsing while marking; layer blobs are bigger and never start with '{'. */
const MAX_DOC = 8 * 1024 * 1024;

/** Sub-directories of cache/ whose JSON files declare GC roots (cache/slots only remembers key parts). */
export const ROOT_DIRS = ['records', 'roots'];

/** Digests named in `*.json` files below cache/records/ and cache/roots/, any depth. */
export async function cacheRoots(cacheDir: string): Promise<Digest[]> {
  const out = new Set<Digest>();
  async function walk(dir: string): Promise<void> {
    let names: import('node:fs').Dirent[];
    try {
      names = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of names) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && e.name.endsWith('.json')) {
        const text = await readFile(p, 'utf8').catch(() => '');
        for (const m of text.match(DIGEST_IN_TEXT) ?? []) if (isDigest(m)) out.add(m);
      }
    }
  }
  for (const d of ROOT_DIRS) await walk(join(cacheDir, d));
  return [...out];
}

/** The blobs and diffIDs reachable from the roots. */
export async function markLive(store: Store, extraRoots: Digest[] = []): Promise<{ blobs: Set<Digest>; diffIDs: Set<Digest> }> {
  const blobs = new Set<Digest>();
  const diffIDs = new Set<Digest>();
  const roots = [...(await store.listEntries()).map((e) => e.descriptor.digest), ...(await cacheRoots(store.layout.cache)), ...extraRoots];

  async function visit(d: Digest): Promise<void> {
    if (blobs.has(d)) return;
    const size = await store.blobSize(d);
    if (size === undefined) {
      // a diffID named by a cache record keeps the blob that holds it
      const blob = await store.blobForDiffID(d);
      if (blob) {
        diffIDs.add(d);
        blobs.add(blob.digest);
      }
      return;
    }
    blobs.add(d);
    if (size > MAX_DOC) return;
    let doc: { mediaType?: string; manifests?: Array<{ digest: Digest }>; config?: { digest: Digest }; layers?: Array<{ digest: Digest }>; subject?: unknown };
    try {
      const text = await readFile(store.blobPath(d), 'utf8');
      if (!text.startsWith('{')) return;
      doc = JSON.parse(text) as typeof doc;
    } catch {
      return;
    }
    if (Array.isArray(doc.manifests) && (doc.mediaType === undefined || isIndexMediaType(doc.mediaType))) {
      for (const m of doc.manifests) if (isDigest(m.digest)) await visit(m.digest);
    } else if (doc.config && Array.isArray(doc.layers)) {
      if (isDigest(doc.config.digest)) {
        blobs.add(doc.config.digest);
        const cfg = await readFile(store.blobPath(doc.config.digest), 'utf8').catch(() => undefined);
        if (cfg) {
          try {
            for (const id of (JSON.parse(cfg) as ImageConfig).rootfs?.diff_ids ?? []) if (isDigest(id)) diffIDs.add(id);
          } catch {
            // a config that is not JSON keeps its layers but names no snapshots
          }
        }
      }
      for (const l of doc.layers) if (isDigest(l.digest)) blobs.add(l.digest);
    }
  }
  for (const r of roots) await visit(r);
  return { blobs, diffIDs };
}

export async function prune(store: Store, opts: PruneOptions = {}): Promise<PruneResult> {
  return store.withExclusive(async () => {
    const live = await markLive(store, opts.extraRoots);
    const result: PruneResult = { removedBlobs: [], removedSnapshots: [], freedBytes: 0 };
    for (const d of await store.listBlobs()) {
      if (live.blobs.has(d)) continue;
      result.freedBytes += (await store.blobSize(d)) ?? 0;
      result.removedBlobs.push(d);
      if (!opts.dryRun) await store.deleteBlob(d);
    }
    for (const { diffID, blob } of await store.listDiffIDs()) {
      if (live.blobs.has(blob.digest)) continue;
      if (!opts.dryRun) await rm(join(store.layout.diffids, diffID.slice(7)), { force: true });
    }
    for (const s of await listSnapshots(store.layout)) {
      if (s.diffID && live.diffIDs.has(s.diffID)) continue;
      result.removedSnapshots.push(s.name);
      if (!opts.dryRun) {
        await rm(`${s.path}.diffid`, { force: true });
        await rm(s.path, { recursive: true, force: true });
      }
    }
    // markers whose directory is gone
    for (const name of await readdir(store.layout.snapshots)) {
      if (!name.endsWith('.diffid')) continue;
      const dir = join(store.layout.snapshots, name.slice(0, -'.diffid'.length));
      if (!(await stat(dir).catch(() => undefined)) && !opts.dryRun) await rm(join(store.layout.snapshots, name), { force: true });
    }
    return result;
  }, opts.lockTimeoutMs ?? 0);
}
