import { closeSync, constants, openSync, readdirSync } from 'node:fs';
import { O_PATH } from '../sys/libc.js';
import { fdPath } from './open-in-root.js';
import { statAt, type StatFields } from './stat-at.js';
import { isDirMode, openDirAt, removeAt } from './write-at.js';

/**
 * Paths beneath a directory of kiln's own whose contents someone else wrote: a RUN's upperdir,
 * where the build's own processes may have replaced any directory with a symlink to a host path.
 * Each component is looked up in the directory before it, opened without following a symlink, so
 * a path whose parent is now a symlink (or a file) is simply not in the tree: nothing is read,
 * listed or removed through it. A plain `path.join(root, p)` would follow such a link on the host.
 */

function isDir(st: StatFields | undefined): st is StatFields {
  return st !== undefined && isDirMode(st.mode);
}

function components(relPath: string): string[] {
  return relPath.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Runs `fn` with the directory holding the last component of `relPath` open (an O_PATH
 * descriptor) and that component's name, when every component above it is a real directory;
 * undefined, without calling `fn`, when one is missing or anything else. A `..` component is
 * never followed up: such a path is not beneath the root.
 */
function withParent<T>(root: string, relPath: string, what: string, fn: (dirFd: number, name: string) => T): T | undefined {
  const parts = components(relPath);
  const last = parts.pop();
  if (last === undefined || last === '..' || parts.includes('..')) return undefined;
  let fd = openSync(root, O_PATH | constants.O_DIRECTORY);
  try {
    for (const part of parts) {
      if (!isDir(statAt(fd, part, what))) return undefined;
      const next = openDirAt(fd, part, what);
      closeSync(fd);
      fd = next;
    }
    return fn(fd, last);
  } finally {
    closeSync(fd);
  }
}

/** lstat of `relPath` beneath `root` (see the file's comment); undefined when it is not there as such. */
export function statBeneath(root: string, relPath: string, what = relPath): StatFields | undefined {
  return withParent(root, relPath, what, (fd, name) => statAt(fd, name, what));
}

/** The names in the directory `relPath` beneath `root`; undefined when it is not a directory there (a symlink to one is not). */
export function listBeneath(root: string, relPath: string, what = relPath): string[] | undefined {
  return withParent(root, relPath, what, (fd, name) => {
    if (!isDir(statAt(fd, name, what))) return undefined;
    const dir = openDirAt(fd, name, what);
    try {
      return readdirSync(fdPath(dir));
    } finally {
      closeSync(dir);
    }
  });
}

/** Removes `relPath` beneath `root` with everything in it; a symlink is removed, never followed, and a path that is not there as such is left alone. */
export function removeBeneath(root: string, relPath: string, what = relPath): void {
  withParent(root, relPath, what, (fd, name) => removeAt(fd, name, what));
}
