import { lstat, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Store } from '../store/store.js';
import { makeStoreDirs } from '../store/store-dirs.js';
import type { Descriptor } from '../image/types.js';
import type { CacheMountExport } from './document.js';

/**
 * `RUN --mount=type=cache` directories carried in a cache artifact
 * (`--cache-to …,cache-mounts=true`): each exported as one gzip layer, and
 * seeded from an imported cache where the store has none of that name.
 */
export async function exportMounts(store: Store): Promise<{ mounts: CacheMountExport[]; busy: string[] }> {
  const { listCacheDirs, withIdleCache } = await import('../sandbox/cache-mounts.js');
  const { entriesFromDirectory, writeLayer } = await import('../layer/index.js');
  const mounts: CacheMountExport[] = [];
  const busy: string[] = [];
  for (const dir of await listCacheDirs(store.root)) {
    // only a cache no RUN is using: a RUN could swap its directories for links to host ones mid-walk
    const layer = await withIdleCache(store.root, dir, (abs) => writeLayer(entriesFromDirectory(abs), store, { compression: 'gzip' }));
    if (layer === undefined) busy.push(dir);
    else mounts.push({ dir, layer: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size, diffID: layer.diffID } });
  }
  return { mounts, busy };
}

/** Seeds the cache mounts named by `mounts` that do not exist locally; returns the directories made. */
export async function importMounts(store: Store, mounts: CacheMountExport[], ensureBlob: (d: Descriptor) => Promise<void>): Promise<string[]> {
  const { extractLayer } = await import('../layer/extract.js');
  const { isCacheDirName } = await import('../sandbox/cache-mounts.js');
  const done: string[] = [];
  const root = store.layout.cacheMounts;
  for (const m of mounts) {
    // the artifact names the directory: only a cache directory's own shape, never `.`, `..` or one of
    // kiln's lock and staging names (a `.` made the whole cache-mounts folder the artifact's tree)
    if (!isCacheDirName(m.dir)) continue;
    const dir = path.join(root, m.dir);
    // lstat: a link there is not a cache to keep (and a RUN refuses it)
    if (await lstat(dir).catch(() => undefined)) continue;
    await ensureBlob(m.layer);
    const tmp = `${dir}.new-import-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    makeStoreDirs(store.layout, root);
    await extractLayer(store.openBlob(m.layer.digest), m.layer.mediaType, tmp, m.layer.size);
    await rename(tmp, dir).catch(async () => rm(tmp, { recursive: true, force: true }));
    done.push(m.dir);
  }
  return done;
}
