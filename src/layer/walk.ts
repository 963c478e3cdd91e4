import { lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { KilnError } from '../errors/index.js';
import { major, minor } from './device.js';
import { comparePaths } from './path-order.js';
import type { LayerEntry } from './types.js';
import { getXattr, listXattrs } from './xattr.js';
import { overlayXattrPrefix } from '../rootless/session.js';

export interface WalkOptions {
  /** Paths (relative to the walked dir, with or without a leading "/") left out with everything beneath them: mount targets. */
  exclude?: string[];
  /** Clamp mtimes to this (the layer writer clamps too; this makes the entries themselves reproducible). */
  sourceDateEpoch?: number;
  /** Read extended attributes (default true). */
  xattrs?: boolean;
}

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
/** trusted.overlay.opaque, or user.overlay.opaque in rootless mode (overlay mounted with userxattr). */
export const OVERLAY_OPAQUE_XATTR = `${overlayXattrPrefix()}opaque`;

/** overlayfs's own bookkeeping in either namespace: never part of a layer, never taken from one. */
export function isOverlayXattr(name: string): boolean {
  return name.startsWith('trusted.overlay.') || name.startsWith('user.overlay.');
}

/** True when overlayfs marked the directory opaque: it replaces the lower directory instead of merging with it. */
export function isOverlayOpaque(path: string): boolean {
  return getXattr(path, OVERLAY_OPAQUE_XATTR)?.toString() === 'y';
}

interface Item {
  /** Name in the layer (a whiteout's ".wh." name). */
  name: string;
  /** Name on disk; undefined for the synthetic opaque marker. */
  disk?: string;
  st: Stats;
  kind: 'plain' | 'whiteout' | 'opaque';
}

/**
 * Drops overlay's own bookkeeping (trusted.overlay.*: opaque markers,
 * redirects, origin file handles) and host SELinux labels, which describe
 * the build machine rather than the image.
 */
function keepXattr(name: string): boolean {
  return !isOverlayXattr(name) && name !== 'security.selinux';
}

function readXattrs(path: string): Record<string, Buffer> | undefined {
  const names = listXattrs(path).filter(keepXattr);
  if (names.length === 0) return undefined;
  const out: Record<string, Buffer> = {};
  for (const n of names) {
    const v = getXattr(path, n);
    if (v !== undefined) out[n] = v;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function normaliseExclude(paths: string[] | undefined): Set<string> {
  return new Set((paths ?? []).map((p) => p.split('/').filter((c) => c !== '' && c !== '.').join('/')).filter((p) => p !== ''));
}

/**
 * Depth-first walk in layer order. With `overlay`, the tree is an overlay
 * upperdir: 0:0 character devices are whiteouts and `trusted.overlay.opaque=y`
 * marks an opaque directory; they become the OCI `.wh.` entries.
 */
async function* walkTree(root: string, opts: WalkOptions, overlay: boolean): AsyncGenerator<LayerEntry> {
  const exclude = normaliseExclude(opts.exclude);
  const withXattrs = opts.xattrs ?? true;
  const epoch = opts.sourceDateEpoch;
  const firstLink = new Map<string, string>();
  const mtimeOf = (st: Stats): number => {
    const t = st.mtimeMs / 1000;
    return epoch !== undefined && t > epoch ? epoch : t;
  };

  function list(rel: string, dirSt: Stats, opaque: boolean): Item[] {
    const abs = rel === '' ? root : join(root, rel);
    const items: Item[] = [];
    for (const disk of readdirSync(abs)) {
      const p = rel === '' ? disk : `${rel}/${disk}`;
      if (exclude.has(p)) continue;
      const st = lstatSync(join(abs, disk));
      if (overlay && st.isCharacterDevice() && st.rdev === 0) items.push({ name: WHITEOUT_PREFIX + disk, disk, st, kind: 'whiteout' });
      else items.push({ name: disk, disk, st, kind: 'plain' });
    }
    if (opaque) items.push({ name: OPAQUE_WHITEOUT, st: dirSt, kind: 'opaque' });
    items.sort((a, b) => comparePaths(a.name, b.name));
    return items;
  }

  // An explicit stack keeps deep trees off the JS call stack; each level holds one sorted listing.
  const rootSt = lstatSync(root);
  if (!rootSt.isDirectory()) throw new KilnError('NOT_FOUND', `${root} is not a directory`);
  const stack: Array<{ rel: string; items: Item[]; i: number }> = [
    { rel: '', items: list('', rootSt, overlay && isOverlayOpaque(root)), i: 0 },
  ];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    if (top.i >= top.items.length) {
      stack.pop();
      continue;
    }
    const it = top.items[top.i++]!;
    const path = top.rel === '' ? it.name : `${top.rel}/${it.name}`;
    const st = it.st;
    const base = { path, uid: st.uid, gid: st.gid, mtime: mtimeOf(st) };
    if (it.kind === 'whiteout') {
      yield { ...base, type: 'file', mode: 0o600, size: 0 };
      continue;
    }
    if (it.kind === 'opaque') {
      yield { ...base, type: 'file', mode: st.mode & 0o777, size: 0 };
      continue;
    }
    const abs = join(root, top.rel, it.disk!);
    const mode = st.mode & 0o7777;
    const xattrs = withXattrs ? readXattrs(abs) : undefined;
    const extra = xattrs ? { xattrs } : {};
    if (st.isDirectory()) {
      yield { ...base, ...extra, type: 'directory', mode };
      const opaque = overlay && isOverlayOpaque(abs);
      stack.push({ rel: path, items: list(path, st, opaque), i: 0 });
      continue;
    }
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = firstLink.get(key);
      if (first !== undefined) {
        yield { ...base, type: 'hardlink', mode, linkname: first };
        continue;
      }
      firstLink.set(key, path);
    }
    if (st.isFile()) {
      yield { ...base, ...extra, type: 'file', mode, size: st.size, sourcePath: abs };
    } else if (st.isSymbolicLink()) {
      yield { ...base, ...extra, type: 'symlink', mode, linkname: readlinkSync(abs) };
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      yield { ...base, ...extra, type: st.isCharacterDevice() ? 'char' : 'block', mode, devmajor: major(st.rdev), devminor: minor(st.rdev) };
    } else if (st.isFIFO()) {
      yield { ...base, ...extra, type: 'fifo', mode };
    }
    // Sockets cannot be stored in a tar; like docker build, they are left out.
  }
}

/** Every entry under `dir`, in layer order, without whiteout interpretation (COPY, COPY --from, exports). */
export function entriesFromDirectory(dir: string, opts: WalkOptions = {}): AsyncGenerator<LayerEntry> {
  return walkTree(dir, opts, false);
}

/**
 * The layer for a RUN step: walks only the overlay upperdir (cost follows
 * what changed), turning overlay whiteouts into OCI whiteout entries and
 * recording hardlinks by inode.
 */
export function diffUpperdir(upperdir: string, opts: WalkOptions = {}): AsyncGenerator<LayerEntry> {
  return walkTree(upperdir, opts, true);
}
