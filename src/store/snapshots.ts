import { readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { isDigest, type Digest } from '../image/digest.js';
import type { LayerRef } from '../image/image.js';
import { tempName, writeFileAtomic } from './atomic-file.js';
import { withFileLock } from './flock.js';
import { snapshotDirName, type StoreLayout } from './layout.js';
import type { BlobVerify } from '../image/blob-store.js';

export { snapshotDirName };

/**
 * Snapshots: one layer extracted into `s/<12 hex>` with OCI whiteouts turned
 * into overlay whiteouts, ready to be a lowerdir. 12 hex digits keep a mount's
 * lowerdir list short (overlay's mount data is one page) while a collision stays
 * detectable: `s/<12 hex>.diffid` holds the full diffID, written last, so a
 * directory without it is an interrupted extraction.
 */

/**
 * Extracts a (compressed) layer blob into `dest` with overlay whiteouts and
 * returns the diffID it computed over every decompressed byte.
 */
export type LayerExtractor = (compressed: Readable, mediaType: string, dest: string, compressedSize?: number, signal?: AbortSignal) => Promise<{ diffID: Digest }>;

/** Ready when the directory exists and its marker names this diffID; throws on a prefix collision. */
async function isReady(dir: string, diffID: Digest): Promise<boolean> {
  const marker = await readFile(`${dir}.diffid`, 'utf8').catch(() => undefined);
  if (marker === undefined) return false;
  if (marker.trim() !== diffID) throw new KilnError('STORE', `snapshot ${dir} belongs to ${marker.trim()}, not ${diffID} (12-hex prefix collision)`);
  return (await stat(dir).catch(() => undefined))?.isDirectory() ?? false;
}

const inflight = new Map<string, Promise<string>>();

interface SnapshotSource {
  readonly layout: StoreLayout;
  readonly extractLayer: LayerExtractor;
  openBlob(digest: Digest, opts?: { verify?: BlobVerify }): Readable;
}

/** `signal` stops the extraction between entries (the first caller's, when several wait on one). */
export function ensureSnapshot(store: SnapshotSource, ref: LayerRef, signal?: AbortSignal): Promise<string> {
  const dir = store.layout.snapshot(ref.diffID);
  let p = inflight.get(dir);
  if (!p) {
    p = (async () => {
      if (await isReady(dir, ref.diffID)) return dir;
      return withFileLock(store.layout.snapshotLock(ref.diffID), async () => {
        if (await isReady(dir, ref.diffID)) return dir;
        await rm(dir, { recursive: true, force: true });
        await extractInto(store, ref, dir, signal);
        return dir;
      });
    })().finally(() => inflight.delete(dir));
    inflight.set(dir, p);
  }
  return p;
}

/**
 * Makes `dir` (already in overlay format: a RUN's unmounted upperdir on the
 * store's file system) the snapshot of `diffID`, instead of extracting the
 * layer that was just written from it. False when a snapshot already exists;
 * then `dir` is left to its owner.
 */
export async function adoptSnapshot(store: SnapshotSource, diffID: Digest, dir: string): Promise<boolean> {
  const target = store.layout.snapshot(diffID);
  return withFileLock(store.layout.snapshotLock(diffID), async () => {
    if (await isReady(target, diffID)) return false;
    await rm(target, { recursive: true, force: true });
    await rename(dir, target);
    await writeFileAtomic(`${target}.diffid`, Buffer.from(`${diffID}\n`), store.layout.tmp);
    return true;
  });
}

async function extractInto(store: SnapshotSource, ref: LayerRef, dir: string, signal?: AbortSignal): Promise<void> {
  const tmp = tempName(store.layout.tmp, 'snap');
  try {
    const { diffID } = await store.extractLayer(store.openBlob(ref.descriptor.digest), ref.descriptor.mediaType, tmp, ref.descriptor.size, signal);
    if (diffID !== ref.diffID) {
      throw new KilnError('DIGEST_MISMATCH', `layer ${ref.descriptor.digest}: uncompressed content hashes to ${diffID}, expected diffID ${ref.diffID}`);
    }
    await rename(tmp, dir);
    await writeFileAtomic(`${dir}.diffid`, Buffer.from(`${ref.diffID}\n`), store.layout.tmp);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Snapshot directories present, with the diffID each belongs to (undefined: interrupted). */
export async function listSnapshots(layout: StoreLayout): Promise<Array<{ name: string; path: string; diffID?: Digest }>> {
  const out: Array<{ name: string; path: string; diffID?: Digest }> = [];
  for (const name of await readdir(layout.snapshots)) {
    if (!/^[a-f0-9]{12}$/.test(name)) continue;
    const path = join(layout.snapshots, name);
    const marker = await readFile(`${path}.diffid`, 'utf8').catch(() => undefined);
    // a marker that is not a digest is as good as none: the extraction never finished
    const diffID = marker?.trim();
    out.push(diffID !== undefined && isDigest(diffID) ? { name, path, diffID } : { name, path });
  }
  return out;
}
