import { lstatSync, readlinkSync } from 'node:fs';
import { KilnError } from '../errors/index.js';

/**
 * The one set of rules kiln uses to turn a path named by a Dockerfile (a COPY
 * or ADD source, a COPY destination, a RUN --mount source, a WORKDIR, a mount
 * point) into a path inside some root: an image's file system, a stage, the
 * build context. Nothing resolved here ever leaves its root.
 *
 * Two kinds of root:
 * - `chroot: true` (images, stages): the tree is a file system of its own. An
 *   absolute symlink starts again at the tree's root and `..` stops there,
 *   exactly as inside a container (openat2 RESOLVE_IN_ROOT).
 * - `chroot: false` (the build context, a cloned repository, a download): an
 *   absolute link, or a `..` that would climb above the root, points at the
 *   build machine. It is refused with UNSAFE_PATH (openat2 RESOLVE_BENEATH).
 *
 * This module is the walk over any tree that can answer "is this a symlink,
 * and to what" (COPY reads layered snapshot views this way). When the result
 * is handed to another process (runc), a walk is not enough, since a path can
 * be swapped between the check and the use: open-in-root.ts has the kernel do
 * the same walk and returns a file descriptor instead.
 */

/** Symlinks followed while resolving one path, as BuildKit's resolver allows (the kernel stops at 40). */
export const MAX_SYMLINKS = 255;

export interface ResolveOptions {
  /** Image semantics (true) or build-context semantics (false); see above. */
  chroot: boolean;
  /** Follow a symlink in the last component too (false: return the link itself). */
  followFinal: boolean;
  /** How errors name the root: "build context", "stage builder", "image"… */
  label: string;
  /** How errors name the path; default the path itself. */
  what?: string;
}

/**
 * Looks up one clean relative path ("" is the root) without following it:
 * the link target for a symlink, null for anything else that exists,
 * undefined when it does not exist.
 */
export type LinkLookup = (path: string) => string | null | undefined;

/** Path segments, without empty and "." ones. */
export function segments(path: string): string[] {
  return path.split('/').filter((s) => s !== '' && s !== '.');
}

export function escapeError(what: string, label: string): KilnError {
  return new KilnError('UNSAFE_PATH', `"${what}" resolves outside the ${label}`);
}

export function loopError(what: string): KilnError {
  return new KilnError('UNSAFE_PATH', `"${what}": too many levels of symbolic links`);
}

/**
 * Resolves `path` (absolute or relative, both taken from the root) inside a
 * tree. Returns the clean relative path it names ("" for the root); components
 * that do not exist are kept literally.
 */
export function resolveInTree(lookup: LinkLookup, path: string, opts: ResolveOptions): string {
  const what = opts.what ?? path;
  let hops = 0;
  const done: string[] = [];
  let todo = segments(path);
  while (todo.length > 0) {
    const seg = todo.shift()!;
    if (seg === '..') {
      if (done.length === 0) {
        if (!opts.chroot) throw escapeError(what, opts.label);
        continue;
      }
      done.pop();
      continue;
    }
    const candidate = done.length === 0 ? seg : `${done.join('/')}/${seg}`;
    const link = todo.length > 0 || opts.followFinal ? lookup(candidate) : null;
    if (typeof link === 'string') {
      if (++hops > MAX_SYMLINKS) throw loopError(what);
      if (link.startsWith('/')) {
        if (!opts.chroot) throw escapeError(what, opts.label);
        done.length = 0;
      }
      todo = [...segments(link), ...todo];
      continue;
    }
    done.push(seg);
  }
  return done.join('/');
}

/**
 * A LinkLookup over a host directory. Only for trees nobody else changes
 * while kiln reads them (a snapshot, the RUN's own overlay before it starts);
 * for anything handed to another process use openInRoot.
 */
export function hostLookup(root: string): LinkLookup {
  return (path) => {
    const host = path === '' ? root : `${root}/${path}`;
    let isLink: boolean;
    try {
      isLink = lstatSync(host).isSymbolicLink();
    } catch {
      return undefined;
    }
    return isLink ? readlinkSync(host) : null;
  };
}
