import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { StoreCacheIndex } from '../../src/cache/records.js';
import { sha256, type Digest } from '../../src/image/digest.js';
import type { Compression, WrittenLayer } from '../../src/layer/index.js';
import { writeLayer } from '../../src/layer/index.js';
import type { Store } from '../../src/store/store.js';

/**
 * A store shaped like one after some builds: a tagged busybox image, layers
 * only the build cache holds (each one file of random bytes of a known size),
 * records with chosen last-use times, snapshots, cache mounts, logs and a
 * stray blob.
 */

export const DAY = 24 * 3600 * 1000;

/** A layer of one file of `size` random bytes. */
export async function randomLayer(store: Store, name: string, size: number, compression: Compression = 'gzip'): Promise<WrittenLayer> {
  const bytes = randomBytes(size);
  return writeLayer([{ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1704067200, size, open: () => Readable.from([bytes]) }], store, { compression });
}

export function recordPath(store: Store, key: Digest): string {
  return join(store.layout.cache, 'records', `${key.slice(7)}.json`);
}

/** Writes a record as the build cache does and backdates its last use. */
export async function putRecord(store: Store, name: string, layer: { mediaType: string; digest: Digest; size: number; diffID: Digest } | undefined, lastUsed: number): Promise<Digest> {
  const index = new StoreCacheIndex(store.layout, (d) => store.hasBlob(d));
  const key = sha256(`key of ${name}`);
  await index.put({ version: 1, key, ...(layer ? { layer } : {}), history: { created_by: `RUN make ${name}` } }, `Dockerfile:${name}`, { parent: sha256('base'), op: name, env: {}, inputs: [] });
  const t = new Date(lastUsed);
  await utimes(recordPath(store, key), t, t);
  return key;
}

/** Sets the mtime of a tree and everything in it. */
export function backdateTree(path: string, when: number): void {
  const stamp = new Date(when).toISOString();
  execFileSync('find', [path, '-exec', 'touch', '-h', '-d', stamp, '{}', '+']);
}

/** A cache mount directory with one file of `size` bytes, last written at `when`. */
export async function makeCacheMount(root: string, name: string, size: number, when: number): Promise<string> {
  const dir = join(root, 'cache-mounts', name);
  await mkdir(join(dir, 'sub'), { recursive: true });
  await writeFile(join(dir, 'sub', 'data'), randomBytes(size));
  await writeFile(`${dir}.lock`, '');
  backdateTree(dir, when);
  backdateTree(`${dir}.lock`, when);
  return dir;
}

export async function makeLog(root: string, name: string, size: number, when: number): Promise<string> {
  const p = join(root, 'logs', name);
  await mkdir(join(root, 'logs'), { recursive: true });
  await writeFile(p, Buffer.alloc(size, 0x61));
  await utimes(p, new Date(when), new Date(when));
  return p;
}

/** Apparent bytes of regular files and symlinks in a tree, measured with find(1), not with kiln's code. */
export function duFiles(path: string): number {
  const out = execFileSync('find', [path, '(', '-type', 'f', '-o', '-type', 'l', ')', '-printf', '%s\\n'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .reduce((n, s) => n + Number(s), 0);
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}
