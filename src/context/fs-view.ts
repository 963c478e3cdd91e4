import type { Readable } from 'node:stream';
import { resolveInTree } from '../fs/resolve-in-root.js';
import type { StatFields } from '../fs/stat-at.js';
import { compareNames } from '../layer/path-order.js';
import { major, minor } from '../layer/device.js';
import type { LayerEntry } from '../layer/types.js';

/**
 * Metadata of one node of a read-only file tree. Synchronous on purpose: every
 * view is backed by local disk, and a COPY of 20,000 small files spends most of
 * its time in lstat, where sync calls are several times cheaper than promises.
 */
export interface FsNode {
  type: LayerEntry['type'];
  /** mode & 0o7777 */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** seconds since the epoch, fractional */
  mtime: number;
  /** symlink target */
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** The real file behind the node, so its content hash can be cached by stat. */
  host?: HostFile;
  /** Extended attributes carried into the layer (file capabilities of image files). */
  xattrs?: Record<string, Buffer>;
}

export interface HostFile {
  path: string;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Links to the inode: a file with one cannot be a hard link of another file in a copy. */
  nlink: number;
}

/**
 * A read-only file tree: the build context, a stage's layered snapshot, an
 * unpacked archive. Paths are "/"-separated, relative to the tree's root, clean,
 * and "" is the root itself. Nothing here follows symlinks; use resolvePath.
 */
export interface FsView {
  /** How errors name this tree: "build context", "stage builder", … */
  readonly label: string;
  /**
   * True for image file systems, where an absolute link target means the
   * tree's own root and `..` stops there, as inside a container. False for the
   * build context, where such a link points at the build machine: following it
   * is refused.
   */
  readonly chroot: boolean;
  lstat(path: string): FsNode | undefined;
  /** Visible child names, sorted. */
  readdir(path: string): readonly string[];
  /** Children with their nodes, sorted: lets a walk skip one lookup per entry. */
  list?(path: string): Listing;
  open(path: string): Readable;
}

/**
 * A directory's visible children, sorted: `nodes[i]` is the node named `names[i]`. Two arrays rather
 * than a [name, node] pair per child: a context of 100,000 files holds 100,000 fewer arrays (about
 * 12 MB) for the whole build.
 */
export interface Listing {
  readonly names: readonly string[];
  readonly nodes: readonly FsNode[];
}

/** A SourceTree is any FsView COPY/ADD can read from. */
export type SourceTree = FsView;

export function nodeFromStats(st: StatFields, hostPath: string): FsNode {
  const type = typeOfStats(st);
  const mode = st.mode & 0o7777;
  const mtime = Math.floor(st.mtimeMs) / 1000;
  const uid = small(st.uid);
  const gid = small(st.gid);
  // A file's node is made whole in one literal: a property added afterwards would give each of a
  // context's (possibly 100,000) nodes an out-of-object property array. The node is its own host
  // file (one object, not two: about 70 bytes less per file of a big context); `host` is declared
  // in the literal and only set after, which keeps the same shape.
  if (type === 'file') {
    const node: Omit<FsNode, 'host'> & HostFile & { host: HostFile | undefined } = {
      type, mode, uid, gid, size: small(st.size), mtime, host: undefined,
      path: hostPath, dev: small(st.dev), ino: small(st.ino), mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, nlink: small(st.nlink),
    };
    node.host = node;
    return node as FsNode;
  }
  const node: FsNode = { type, mode, uid, gid, size: 0, mtime };
  if (type === 'char' || type === 'block') {
    node.devmajor = major(st.rdev);
    node.devminor = minor(st.rdev);
  }
  return node;
}

/**
 * The same number, as a small integer where it is one. A Stats field is a double even when it holds
 * an integer, and V8 keeps a double in an object field as a separate 12-byte box, which every copy
 * into another object allocates again; a small integer sits in the field itself. Over a context of
 * 100,000 files that is about 1 million boxes fewer (14 MB held until the layer is written). Values
 * too large for that (inode numbers of some file systems, sizes over 1 GiB) stay as they are.
 */
function small(n: number): number {
  // `n | 0` equals `n` only for an integer that fits 32 bits: a fraction is never truncated
  return (n | 0) === n ? n | 0 : n;
}

/** The node type of st_mode's file type bits (S_IFMT); what is none of the others is a FIFO. */
function typeOfStats(st: StatFields): LayerEntry['type'] {
  switch (st.mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    case 0o020000:
      return 'char';
    case 0o060000:
      return 'block';
    default:
      return 'fifo';
  }
}

export function joinRel(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Every node below `path` (not `path` itself), depth-first with sorted names, without following symlinks. */
export function* walk(view: FsView, path: string): Generator<[string, FsNode]> {
  if (view.list) {
    const { names, nodes } = view.list(path);
    for (let i = 0; i < names.length; i++) {
      const child = joinRel(path, names[i]!);
      const node = nodes[i]!;
      yield [child, node];
      if (node.type === 'directory') yield* walk(view, child);
    }
    return;
  }
  for (const name of view.readdir(path)) {
    const child = joinRel(path, name);
    const node = view.lstat(child);
    if (!node) continue;
    yield [child, node];
    if (node.type === 'directory') yield* walk(view, child);
  }
}

/**
 * Resolves `path` inside the view like a chroot would: symlinks are followed
 * (absolute targets from the root), `..` stops at the root. In a non-chroot
 * view (the build context) a path or link that would climb above the root, or
 * an absolute link, throws UNSAFE_PATH naming `what` instead. The rules are
 * fs/resolve-in-root.ts's, shared with RUN --mount sources and the sandbox.
 * Returns the resolved relative path (it may not exist).
 */
export function resolvePath(
  view: FsView,
  path: string,
  opts: { followFinal: boolean; what?: string },
): string {
  const lookup = (p: string): string | null | undefined => {
    const node = view.lstat(p);
    if (!node) return undefined;
    return node.type === 'symlink' ? (node.linkname ?? '') : null;
  };
  return resolveInTree(lookup, path, { chroot: view.chroot, followFinal: opts.followFinal, label: view.label, what: opts.what ?? path });
}

/**
 * Sorts a directory listing in layer order (UTF-8 byte order). The engine's
 * native sort already agrees with it unless a name holds a character outside
 * the BMP, so the slower byte comparison is used only then.
 */
export function sortNames(names: string[]): string[] {
  names.sort();
  for (const n of names) {
    if (/[\uD800-\uDFFF]/.test(n)) return names.sort(compareNames);
  }
  return names;
}

/** Like walk, without generator overhead: the hot path of hashing a large tree. */
export function forEachNode(view: FsView, path: string, fn: (path: string, node: FsNode) => void): void {
  if (view.list) {
    const { names, nodes } = view.list(path);
    for (let i = 0; i < names.length; i++) {
      const child = path === '' ? names[i]! : `${path}/${names[i]!}`;
      const node = nodes[i]!;
      fn(child, node);
      if (node.type === 'directory') forEachNode(view, child, fn);
    }
    return;
  }
  for (const name of view.readdir(path)) {
    const child = path === '' ? name : `${path}/${name}`;
    const node = view.lstat(child);
    if (!node) continue;
    fn(child, node);
    if (node.type === 'directory') forEachNode(view, child, fn);
  }
}
