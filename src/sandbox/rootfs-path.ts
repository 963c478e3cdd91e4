import { lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';

/**
 * Resolves `path` inside `root` the way the container will see it: symlinks
 * are followed, but an absolute link or `..` never leaves the root. Used for
 * everything kiln reads or creates in an image's rootfs from the host side
 * (/etc/passwd, WORKDIR, mount points) so a hostile image cannot point kiln at
 * host files.
 *
 * Returns the resolved in-root path (starting with "/"); the last components
 * may not exist. Synchronous: a few lstat calls cost less than the thread-pool
 * round trips async calls would add to every RUN.
 */
export function resolveInRoot(root: string, path: string, maxLinks = 40): string {
  let pending = posix.normalize(`/${path}`).split('/').filter(Boolean);
  let resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    const host = posix.join(root, ...candidate);
    let isLink = false;
    try {
      isLink = lstatSync(host).isSymbolicLink();
    } catch {
      // missing: the rest is taken literally
      resolved = candidate;
      continue;
    }
    if (!isLink) {
      resolved = candidate;
      continue;
    }
    if (++links > maxLinks) throw new Error(`too many symlinks resolving ${path}`);
    const target = readlinkSync(host);
    const targetParts = target.split('/').filter(Boolean);
    if (target.startsWith('/')) resolved = [];
    pending = [...targetParts, ...pending];
  }
  return `/${resolved.join('/')}`;
}

/** Host path of an in-root path after resolution. */
export function hostPathInRoot(root: string, path: string): string {
  return posix.join(root, resolveInRoot(root, path));
}
