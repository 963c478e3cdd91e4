import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { rootlessSession } from '../rootless/session.js';

/**
 * Where things live under a store root. The root is an OCI image layout
 * (oci-layout, index.json, blobs/) so skopeo and umoci read it directly; the
 * other entries are kiln's own and ignored by those tools.
 */
export interface StoreLayout {
  root: string;
  ociLayout: string;
  index: string;
  blobs: string;
  /** In-flight writes; swept at open when no other process uses the store. */
  tmp: string;
  /** Resumable downloads; survive the sweep (for a while). */
  partial: string;
  /** Extracted layers, `s/<12 hex of diffID>`: short so many lowerdirs fit in overlay's one-page mount data. */
  snapshots: string;
  /** Build-cache records; sha256 digests named in JSON files under cache/records/ and cache/roots/ are GC roots. */
  cache: string;
  locks: string;
  /** diffID → blob descriptor, one small file each. */
  diffids: string;
  /** blob → registries/repositories it is known to exist in (for cross-repo mounts). */
  origins: string;
  /** blob → size, inode and ctime of the file kiln hashed when it wrote it (verified-record.ts). */
  verified: string;
  /** RUN --mount=type=cache directories, by id. */
  cacheMounts: string;
}

export function storeLayout(root: string): StoreLayout {
  const r = resolve(root);
  return {
    root: r,
    ociLayout: join(r, 'oci-layout'),
    index: join(r, 'index.json'),
    blobs: join(r, 'blobs', 'sha256'),
    tmp: join(r, 'tmp'),
    partial: join(r, 'tmp', 'partial'),
    snapshots: join(r, 's'),
    cache: join(r, 'cache'),
    locks: join(r, 'locks'),
    diffids: join(r, 'meta', 'diffids'),
    origins: join(r, 'meta', 'origins'),
    verified: join(r, 'meta', 'verified'),
    cacheMounts: join(r, 'cache-mounts'),
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
