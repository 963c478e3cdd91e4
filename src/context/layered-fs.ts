import { createReadStream, lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { type FsNode, type FsView, nodeFromStats, resolvePath, sortNames } from './fs-view.js';
import { getXattr } from '../layer/xattr.js';
import { isOverlayOpaque } from '../layer/walk.js';

interface Located {
  node: FsNode;
  /** For directories: the layers (indices, top first) whose copy of the directory shows through. */
  dirLayers: number[];
  /** Host path of the topmost copy. */
  host: string;
}

/**
 * A read-only overlay view of an image's file system: snapshot directories,
 * topmost first, merged the way overlayfs merges lowerdirs. A 0:0 character
 * device hides a name; a directory with `trusted.overlay.opaque=y` hides what
 * lower layers hold below it; a non-directory hides lower layers entirely.
 */
export class LayeredFs implements FsView {
  readonly chroot = true;
  private readonly located = new Map<string, Located | null>();

  constructor(
    /** Snapshot directories, topmost first. */
    readonly layers: readonly string[],
    readonly label: string = 'image',
  ) {}

  lstat(path: string): FsNode | undefined {
    return this.locate(path)?.node;
  }

  readdir(path: string): string[] {
    const dir = this.locate(path);
    if (!dir || dir.node.type !== 'directory') return [];
    const seen = new Set<string>();
    const names: string[] = [];
    for (const i of dir.dirLayers) {
      let raw: string[];
      try {
        raw = readdirSync(this.host(i, path));
      } catch {
        continue;
      }
      for (const name of raw) {
        if (seen.has(name)) continue;
        seen.add(name);
        if (this.locate(path === '' ? name : `${path}/${name}`)) names.push(name);
      }
    }
    return sortNames(names);
  }

  open(path: string): Readable {
    const loc = this.locate(path);
    if (loc?.node.type !== 'file') throw new KilnError('NOT_FOUND', `"${path}" is not a regular file in ${this.label}`);
    return createReadStream(loc.host);
  }

  /** Like lstat, after following symlinks inside this file system's root. */
  stat(path: string): FsNode | undefined {
    return this.lstat(resolvePath(this, path, { followFinal: true }));
  }

  /** A symlink's target, as stored. */
  readlink(path: string): string {
    const node = this.lstat(path);
    if (node?.type !== 'symlink') throw new KilnError('NOT_FOUND', `"${path}" is not a symbolic link in ${this.label}`);
    return node.linkname ?? '';
  }

  /** The host file holding `path`'s topmost copy. */
  hostPath(path: string): string | undefined {
    return this.locate(path)?.host;
  }

  private host(layer: number, path: string): string {
    return path === '' ? this.layers[layer]! : `${this.layers[layer]}/${path}`;
  }

  private locate(path: string): Located | undefined {
    const cached = this.located.get(path);
    if (cached !== undefined) return cached ?? undefined;
    const loc = path === '' ? this.locateRoot() : this.locateChild(path);
    this.located.set(path, loc ?? null);
    return loc;
  }

  private locateRoot(): Located | undefined {
    const dirLayers: number[] = [];
    let top: Stats | undefined;
    for (let i = 0; i < this.layers.length; i++) {
      const st = lstatSync(this.layers[i]!, { throwIfNoEntry: false });
      if (!st?.isDirectory()) continue;
      top ??= st;
      dirLayers.push(i);
      if (isOverlayOpaque(this.layers[i]!)) break;
    }
    if (!top) return { node: rootNode(), dirLayers, host: this.layers[0] ?? '/' };
    return { node: nodeFromStats(top, this.layers[dirLayers[0]!]!), dirLayers, host: this.layers[dirLayers[0]!]! };
  }

  private locateChild(path: string): Located | undefined {
    const slash = path.lastIndexOf('/');
    const parent = this.locate(slash < 0 ? '' : path.slice(0, slash));
    if (!parent || parent.node.type !== 'directory') return undefined;
    const layers = parent.dirLayers;
    for (let k = 0; k < layers.length; k++) {
      const i = layers[k]!;
      const host = this.host(i, path);
      const st = lstatSync(host, { throwIfNoEntry: false });
      if (!st) continue;
      if (isWhiteout(st) || st.isSocket()) return undefined;
      const node = nodeFromStats(st, host);
      if (node.type === 'symlink') node.linkname = readlinkSync(host);
      if (node.type === 'file') {
        // COPY --from must not drop file capabilities (ping, newuidmap…); BuildKit keeps them too.
        const cap = getXattr(host, 'security.capability');
        if (cap) node.xattrs = { 'security.capability': cap };
      }
      if (node.type !== 'directory') return { node, dirLayers: [], host };
      const dirLayers = [i];
      if (!isOverlayOpaque(host)) {
        for (let m = k + 1; m < layers.length; m++) {
          const lower = this.host(layers[m]!, path);
          const lst = lstatSync(lower, { throwIfNoEntry: false });
          if (!lst) continue;
          if (!lst.isDirectory()) break;
          dirLayers.push(layers[m]!);
          if (isOverlayOpaque(lower)) break;
        }
      }
      return { node, dirLayers, host };
    }
    return undefined;
  }
}

function isWhiteout(st: Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

function rootNode(): FsNode {
  return { type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 };
}
