import { closeSync, createReadStream, fstatSync, readdirSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import type { Digest } from '../image/digest.js';
import { hashSelection } from './content-hash.js';
import { findIgnoreFile, loadContainedIgnoreFile, loadIgnoreFile, type MatchInfo, PatternMatcher } from './dockerignore.js';
import { type FsNode, type FsView, joinRel, type Listing, nodeFromStats, sortNames } from './fs-view.js';
import type { HashCache } from './hash-cache.js';
import { compareNames } from '../layer/path-order.js';
import { type DirIdentity, hasProcFd, openDirChecked, readlinkAt, type StatFields, statAt } from '../fs/stat-at.js';

export interface OpenContextOptions {
  /** An explicit ignore file; `null` disables ignoring. Default: found from `dockerfile` and the context root. */
  ignoreFile?: string | null;
  /** Path of the Dockerfile, so `<Dockerfile>.dockerignore` beside it can win over `.dockerignore`. */
  dockerfile?: string;
  /** Patterns used instead of any ignore file (e.g. `.git` for a cloned repository). */
  ignorePatterns?: string[];
  /** How errors name the tree; default "build context". */
  label?: string;
  /**
   * The tree came from elsewhere (stdin, a download, a git checkout): its ignore files are
   * resolved inside it, never through a link to a host file (see loadContainedIgnoreFile).
   */
  contained?: boolean;
}

interface Verdict {
  excluded: boolean;
  info: MatchInfo;
}

/**
 * The build context as COPY sees it: a directory with `.dockerignore` applied,
 * read-only, symlinks never followed out of it. Nodes and listings are read
 * once and remembered, so the context behaves as one snapshot for the build.
 *
 * Every read of the host goes through a descriptor of the directory that holds
 * the entry, opened without following a symlink and checked to be the very
 * directory first seen at that path (device and inode). A context directory, or
 * one above it, swapped for a symlink while the build runs — a COPY of one
 * directory lists its subdirectories only as its layer is written, so the window
 * lasts as long as the attacker's big file takes to read — is refused; it cannot
 * make a listing name files outside the context.
 */
export class BuildContext implements FsView {
  readonly chroot = false;
  private readonly nodes = new Map<string, FsNode | null>();
  private readonly verdicts = new Map<string, Verdict>();
  private readonly visible = new Map<string, boolean>();
  private readonly listings = new Map<string, Listing>();
  /** Each directory's device and inode as first seen: what a later descriptor of its path must name. */
  private readonly dirIds = new Map<string, DirIdentity>();
  /** Per listed directory, the names on disk its listing leaves out (ignored entries, sockets). */
  private readonly left = new Map<string, string[]>();

  private constructor(
    rootId: DirIdentity,
    readonly root: string,
    readonly matcher: PatternMatcher,
    /** The ignore file in use, if any. */
    readonly ignoreFile: string | undefined,
    readonly label: string,
  ) {
    this.dirIds.set('', rootId);
  }

  static open(dir: string, opts: OpenContextOptions = {}): BuildContext {
    const root = resolve(dir);
    let st;
    try {
      st = statSync(root);
    } catch {
      throw new KilnError('CONTEXT', `build context "${dir}" not found`);
    }
    if (!st.isDirectory()) throw new KilnError('CONTEXT', `build context "${dir}" is not a directory`);
    const label = opts.label ?? 'build context';
    const rootId = { dev: st.dev, ino: st.ino };
    if (opts.ignorePatterns) return new BuildContext(rootId, root, new PatternMatcher(opts.ignorePatterns), undefined, label);
    if (opts.contained && opts.ignoreFile === undefined) {
      const found = loadContainedIgnoreFile(root, opts.dockerfile);
      return new BuildContext(rootId, root, found.matcher, found.file, label);
    }
    const file = opts.ignoreFile === null ? undefined : (opts.ignoreFile ?? findIgnoreFile(root, opts.dockerfile));
    return new BuildContext(rootId, root, loadIgnoreFile(file), file, label);
  }

  lstat(path: string): FsNode | undefined {
    const cached = this.nodes.get(path);
    if (cached !== undefined) return cached ?? undefined;
    // A listed directory already holds its children's nodes: no second lstat, no map entry per file.
    const slash = path.lastIndexOf('/');
    const listing = path === '' ? undefined : this.listings.get(slash < 0 ? '' : path.slice(0, slash));
    if (listing) return findNode(listing, slash < 0 ? path : path.slice(slash + 1));
    const node = this.readNode(path);
    this.nodes.set(path, node ?? null);
    return node;
  }

  readdir(path: string): readonly string[] {
    return this.list(path).names;
  }

  list(path: string): Listing {
    const cached = this.listings.get(path);
    if (cached) return cached;
    const dir = this.lstat(path);
    if (dir?.type !== 'directory') return EMPTY_LISTING;
    const listing = this.inDir(path, (fd) => {
      const names: string[] = [];
      const nodes: FsNode[] = [];
      const left: string[] = [];
      for (const name of this.namesIn(fd, path)) {
        const child = path === '' ? name : `${path}/${name}`;
        const node = this.isVisible(child) ? (this.nodes.get(child) ?? this.statIn(fd, child, name)) : undefined;
        if (node) {
          names.push(name);
          nodes.push(node);
        } else {
          left.push(name);
        }
      }
      if (left.length > 0) this.left.set(path, left);
      return { names, nodes };
    });
    this.listings.set(path, listing);
    return listing;
  }

  /**
   * What the directory `path` holds on disk that the context does not show (entries `.dockerignore`
   * excludes, sockets), as paths relative to `path`, with every directory on the way to one of them
   * (relative too, "" for `path` itself; parents first). A `RUN --mount=type=bind` of the context
   * masks exactly these, so the RUN sees the files BuildKit would have sent it and no others.
   * Undefined when nothing is left out.
   */
  leftOutBeneath(path: string): LeftOut | undefined {
    const dirs: { path: string; node: FsNode }[] = [];
    const entries: string[] = [];
    const cut = path === '' ? 0 : path.length + 1;
    const visit = (dir: string): boolean => {
      const { names, nodes } = this.list(dir);
      const left = this.left.get(dir);
      let any = left !== undefined;
      if (left) for (const name of left) entries.push(joinRel(dir, name).slice(cut));
      for (let i = 0; i < names.length; i++) if (nodes[i]!.type === 'directory' && visit(joinRel(dir, names[i]!))) any = true;
      if (any) dirs.push({ path: dir.slice(cut), node: this.lstat(dir)! });
      return any;
    };
    if (this.lstat(path)?.type !== 'directory' || !visit(path)) return undefined;
    // a directory was pushed after everything beneath it: reversed, parents come first
    return { dirs: dirs.reverse(), entries };
  }

  open(path: string): Readable {
    const node = this.lstat(path);
    if (node?.type !== 'file') throw new KilnError('CONTEXT', `"${path}" is not a regular file in the ${this.label}`);
    return createReadStream(this.hostPath(path));
  }

  /**
   * One flat string, not a template literal's rope (a string object per part, joined when first read
   * whole): a file's node holds its host path for the whole build, and a layer whose reads run on a
   * worker never has this thread read it whole; at 100,000 files the ropes held 8 MB more (the main
   * thread's open(2) used to flatten each).
   */
  hostPath(path: string): string {
    return path === '' ? this.root : [this.root, path].join('/');
  }

  /** Digest of exactly these context paths (directories with their contents); see SelectionHasher. */
  hashSelection(paths: readonly string[], cache: HashCache): Digest {
    return hashSelection(this, paths, cache);
  }

  private readNode(path: string): FsNode | undefined {
    if (path !== '') {
      const slash = path.lastIndexOf('/');
      const parent = slash < 0 ? '' : path.slice(0, slash);
      // Paths arrive clean; a "." or ".." component (or an empty one) is no entry of the context,
      // whatever the directory holds under that name ("sub/.." must not reach the root's parent).
      const name = path.slice(slash + 1);
      if (name === '' || name === '.' || name === '..') return undefined;
      // Never let the host resolve a symlinked ancestor: only walk through real, visible directories.
      if (this.lstat(parent)?.type !== 'directory') return undefined;
      if (!this.isVisible(path)) return undefined;
    }
    return this.statHost(path);
  }

  /** The node at `path`, read through a checked descriptor of its parent (the root's own through its own). */
  private statHost(path: string): FsNode | undefined {
    // the root's own node through the checked descriptor too: a root swapped since open shows nothing of its replacement
    if (path === '') return this.inDir('', (fd) => this.fromStats(fstatSync(fd), ''));
    const slash = path.lastIndexOf('/');
    return this.inDir(slash < 0 ? '' : path.slice(0, slash), (fd) => this.statIn(fd, path, slash < 0 ? path : path.slice(slash + 1)));
  }

  /** The node of entry `name` of the directory open as `fd`; `path` is its context path. */
  private statIn(fd: number, path: string, name: string): FsNode | undefined {
    const what = `"${path}" in the ${this.label}`;
    const st = statAt(fd, name, what);
    if (!st) return undefined;
    const node = this.fromStats(st, path);
    if (node?.type === 'symlink') node.linkname = readlinkAt(fd, name, what);
    return node;
  }

  private fromStats(st: StatFields, path: string): FsNode | undefined {
    // Sockets cannot live in a layer; Docker leaves them out of the context too.
    if ((st.mode & 0o170000) === 0o140000) return undefined;
    const node = nodeFromStats(st, this.hostPath(path));
    if (node.type === 'directory' && !this.dirIds.has(path)) this.dirIds.set(path, { dev: st.dev, ino: st.ino });
    return node;
  }

  /**
   * Runs `read` with a descriptor of the context directory `path`, which must still be the directory
   * first seen there: anything read through the descriptor is in that directory, whatever its path
   * leads to by then.
   */
  private inDir<T>(path: string, read: (fd: number) => T): T {
    const id = this.dirIds.get(path);
    if (!id) throw new KilnError('INTERNAL', `context directory "${path}" read before it was looked up`);
    const fd = openDirChecked(this.hostPath(path), id, path === '', () => new KilnError('CONTEXT', `"${path || '.'}" in the ${this.label} was replaced while the build read it (a directory swapped for a symlink or another directory); nothing was read through it`));
    try {
      return read(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** The sorted names in the directory open as `fd`. */
  private namesIn(fd: number, path: string): string[] {
    try {
      // Without /proc the names come from the path; each is still looked up in the descriptor's directory.
      return sortNames(readdirSync(hasProcFd() ? `/proc/self/fd/${fd}` : this.hostPath(path)));
    } catch (e) {
      throw new KilnError('CONTEXT', `cannot read "${path || '.'}" in the ${this.label}: ${(e as Error).message}`);
    }
  }

  private verdict(path: string): Verdict {
    const cached = this.verdicts.get(path);
    if (cached) return cached;
    const slash = path.lastIndexOf('/');
    const parentInfo = slash < 0 ? [] : this.verdict(path.slice(0, slash)).info;
    const v = this.matcher.matchWithParent(path, parentInfo);
    this.verdicts.set(path, v);
    return v;
  }

  /**
   * Not excluded, or an excluded directory that still holds a re-included
   * entry (fsutil creates such directories with only those entries).
   */
  private isVisible(path: string): boolean {
    if (this.matcher.empty) return true;
    const cached = this.visible.get(path);
    if (cached !== undefined) return cached;
    let vis = !this.verdict(path).excluded;
    if (!vis && this.matcher.mayReinclude(path)) {
      if (this.statHost(path)?.type === 'directory') vis = this.inDir(path, (fd) => this.namesIn(fd, path)).some((n) => this.isVisible(`${path}/${n}`));
    }
    this.visible.set(path, vis);
    return vis;
  }
}

const EMPTY_LISTING: Listing = { names: [], nodes: [] };

/** See BuildContext.leftOutBeneath. */
export interface LeftOut {
  dirs: { path: string; node: FsNode }[];
  entries: string[];
}

/** Binary search in a listing sorted by compareNames. */
function findNode(listing: Listing, name: string): FsNode | undefined {
  const { names } = listing;
  let lo = 0;
  let hi = names.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const c = compareNames(names[mid]!, name);
    if (c === 0) return listing.nodes[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
