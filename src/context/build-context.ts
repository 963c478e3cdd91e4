import { createReadStream, lstatSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import type { Digest } from '../image/digest.js';
import { hashSelection } from './content-hash.js';
import { findIgnoreFile, loadIgnoreFile, type MatchInfo, PatternMatcher } from './dockerignore.js';
import { type FsNode, type FsView, type Listing, nodeFromStats, sortNames } from './fs-view.js';
import type { HashCache } from './hash-cache.js';
import { compareNames } from '../layer/path-order.js';

export interface OpenContextOptions {
  /** An explicit ignore file; `null` disables ignoring. Default: found from `dockerfile` and the context root. */
  ignoreFile?: string | null;
  /** Path of the Dockerfile, so `<Dockerfile>.dockerignore` beside it can win over `.dockerignore`. */
  dockerfile?: string;
  /** Patterns used instead of any ignore file (e.g. `.git` for a cloned repository). */
  ignorePatterns?: string[];
  /** How errors name the tree; default "build context". */
  label?: string;
}

interface Verdict {
  excluded: boolean;
  info: MatchInfo;
}

/**
 * The build context as COPY sees it: a directory with `.dockerignore` applied,
 * read-only, symlinks never followed out of it. Nodes and listings are read
 * once and remembered, so the context behaves as one snapshot for the build.
 */
export class BuildContext implements FsView {
  readonly chroot = false;
  private readonly nodes = new Map<string, FsNode | null>();
  private readonly verdicts = new Map<string, Verdict>();
  private readonly visible = new Map<string, boolean>();
  private readonly listings = new Map<string, Listing>();

  private constructor(
    readonly root: string,
    readonly matcher: PatternMatcher,
    /** The ignore file in use, if any. */
    readonly ignoreFile: string | undefined,
    readonly label: string,
  ) {}

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
    if (opts.ignorePatterns) return new BuildContext(root, new PatternMatcher(opts.ignorePatterns), undefined, label);
    const file = opts.ignoreFile === null ? undefined : (opts.ignoreFile ?? findIgnoreFile(root, opts.dockerfile));
    return new BuildContext(root, loadIgnoreFile(file), file, label);
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
    const names: string[] = [];
    const nodes: FsNode[] = [];
    for (const name of this.rawNames(path)) {
      const child = path === '' ? name : `${path}/${name}`;
      if (!this.isVisible(child)) continue;
      // The parent is known to be a real directory here, so the child can be read directly.
      const node = this.nodes.get(child) ?? this.statHost(child);
      if (node) {
        names.push(name);
        nodes.push(node);
      }
    }
    const listing: Listing = { names, nodes };
    this.listings.set(path, listing);
    return listing;
  }

  open(path: string): Readable {
    const node = this.lstat(path);
    if (node?.type !== 'file') throw new KilnError('CONTEXT', `"${path}" is not a regular file in the ${this.label}`);
    return createReadStream(this.hostPath(path));
  }

  hostPath(path: string): string {
    return path === '' ? this.root : `${this.root}/${path}`;
  }

  /** Digest of exactly these context paths (directories with their contents); see SelectionHasher. */
  hashSelection(paths: readonly string[], cache: HashCache): Digest {
    return hashSelection(this, paths, cache);
  }

  private readNode(path: string): FsNode | undefined {
    if (path !== '') {
      const slash = path.lastIndexOf('/');
      const parent = slash < 0 ? '' : path.slice(0, slash);
      // Never let the host resolve a symlinked ancestor: only walk through real, visible directories.
      if (this.lstat(parent)?.type !== 'directory') return undefined;
      if (!this.isVisible(path)) return undefined;
    }
    return this.statHost(path);
  }

  private statHost(path: string): FsNode | undefined {
    const host = this.hostPath(path);
    const st = lstatSync(host, { throwIfNoEntry: false });
    // Sockets cannot live in a layer; Docker leaves them out of the context too.
    if (!st || st.isSocket()) return undefined;
    const node = nodeFromStats(st, host);
    if (node.type === 'symlink') node.linkname = readlinkSync(host);
    return node;
  }

  private rawNames(path: string): string[] {
    try {
      return sortNames(readdirSync(this.hostPath(path)));
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
      const st = lstatSync(this.hostPath(path), { throwIfNoEntry: false });
      if (st?.isDirectory()) vis = this.rawNames(path).some((n) => this.isVisible(`${path}/${n}`));
    }
    this.visible.set(path, vis);
    return vis;
  }
}

const EMPTY_LISTING: Listing = { names: [], nodes: [] };

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
