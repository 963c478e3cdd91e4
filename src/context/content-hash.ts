import { createHash, type Hash } from 'node:crypto';
import { digestOfHash, type Digest } from '../image/digest.js';
import { KilnError } from '../errors/index.js';
import type { FsNode, FsView } from './fs-view.js';
import { forEachNode } from './fs-view.js';
import { cleanPath } from './glob.js';
import type { HashCache } from './hash-cache.js';

/**
 * Accumulates one digest over a list of file-tree nodes: path, type, mode,
 * link target, device numbers, carried xattrs and file bytes. Never mtime and never the owner:
 * COPY writes root-owned files unless --chown, so the build machine's owners
 * must not split the cache between machines (BuildKit's rule too).
 */
export class SelectionHasher {
  private readonly h: Hash = createHash('sha256');
  // Records are batched: one update per ~64 KiB instead of one per file.
  private pending = '';
  count = 0;
  /** Per path, a short digest of its record (for --explain-cache to name the file that changed); bounded. */
  private readonly files = new Map<string, string>();
  private filesTruncated = false;

  constructor(private readonly cache: HashCache) {}

  add(path: string, node: FsNode): void {
    let content = '';
    if (node.type === 'file') {
      if (!node.host) throw new KilnError('INTERNAL', `no backing file for "${path}"`);
      content = this.cache.fileSha256(node.host);
    } else if (node.type === 'char' || node.type === 'block') {
      content = `${node.devmajor ?? 0},${node.devminor ?? 0}`;
    }
    if (node.xattrs) {
      for (const k of Object.keys(node.xattrs).sort()) content += `\0${k}=${node.xattrs[k]!.toString('hex')}`;
    }
    const record = `${node.type}\0${node.mode.toString(8)}\0${node.linkname ?? ''}\0${content}`;
    this.pending += `${path}\0${record}\n`;
    this.count++;
    if (this.files.size < MAX_LISTED_FILES) this.files.set(path, createHash('sha256').update(record).digest('hex').slice(0, 16));
    else this.filesTruncated = true;
    if (this.pending.length > 65536) this.flush();
  }

  private flush(): void {
    this.h.update(this.pending);
    this.pending = '';
  }

  /** Mixes a labelled value (a source name, an option) into the digest. */
  mark(label: string): void {
    this.pending += `#${label}\n`;
  }

  digest(): Digest {
    this.flush();
    return digestOfHash(this.h);
  }

  /** What each selected path hashed to; undefined past MAX_LISTED_FILES (a miss is then explained without file names). */
  listing(): Record<string, string> | undefined {
    return this.filesTruncated ? undefined : Object.fromEntries(this.files);
  }
}

/** Paths a selection lists for --explain-cache; beyond it the slot file would grow with the context. */
const MAX_LISTED_FILES = 5000;

/**
 * One digest over exactly the selected paths of a view and, for directories,
 * everything below them. Paths are recorded relative to the view's root.
 */
export function hashSelection(view: FsView, paths: readonly string[], cache: HashCache): Digest {
  const hasher = new SelectionHasher(cache);
  for (const given of paths) {
    const cleaned = cleanPath(given.replace(/^\/+/, ''));
    if (cleaned === '..' || cleaned.startsWith('../')) throw new KilnError('UNSAFE_PATH', `"${given}" is outside the ${view.label}`);
    const p = cleaned === '.' ? '' : cleaned;
    const node = view.lstat(p);
    if (!node) throw new KilnError('CONTEXT', `"${given}" not found in ${view.label}`);
    hasher.mark(p);
    hasher.add(p, node);
    if (node.type === 'directory') forEachNode(view, p, (child, n) => hasher.add(child, n));
  }
  return hasher.digest();
}
