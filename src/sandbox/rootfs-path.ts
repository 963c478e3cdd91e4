import { posix } from 'node:path';
import { hostLookup, resolveInTree } from '../fs/resolve-in-root.js';

/**
 * Resolves `path` inside the RUN's rootfs the way the container will see it:
 * symlinks are followed, but an absolute link or `..` never leaves the root.
 * Used for what kiln reads or creates in the rootfs from the host side
 * (/etc/passwd, WORKDIR, mount points) before the container starts, so a
 * hostile image cannot point kiln at host files. The rules are
 * fs/resolve-in-root.ts's (chroot semantics).
 *
 * Returns the resolved in-root path (starting with "/"); the last components
 * may not exist. Synchronous: a few lstat calls cost less than the thread-pool
 * round trips async calls would add to every RUN.
 */
export function resolveInRoot(root: string, path: string): string {
  return `/${resolveInTree(hostLookup(root), path, { chroot: true, followFinal: true, label: 'image' })}`;
}

/** Host path of an in-root path after resolution. */
export function hostPathInRoot(root: string, path: string): string {
  return posix.join(root, resolveInRoot(root, path));
}
