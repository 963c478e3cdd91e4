import { closeSync, constants, mkdirSync, openSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { KilnError } from '../errors/index.js';
import { O_PATH } from '../sys/libc.js';
import { fdPath } from './open-in-root.js';
import { statAt } from './stat-at.js';

/**
 * Creating and removing names in a directory held open as a descriptor, never through a symlink:
 * for writing into a directory on the host that others may also write to (`-o type=local`'s
 * destination, where an earlier export or another user may have left a symlink). Each call acts
 * on one name in a directory the caller opened without following a symlink, so what the name is
 * cannot redirect it. Node has no *at() calls: the directory's /proc/self/fd link names it, and
 * only the last component, which none of these calls follows, is looked up in it.
 */

const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;

/** `name` in the directory open as `dirFd`, as a path the kernel resolves from that very directory. */
export function pathAt(dirFd: number, name: string): string {
  return `${fdPath(dirFd)}/${name}`;
}

/** Whether a stat's mode is a directory's (statAt gives the raw st_mode). */
export function isDirMode(mode: number): boolean {
  return (mode & S_IFMT) === S_IFDIR;
}

function notADirectory(what: string): KilnError {
  return new KilnError('UNSAFE_PATH', `${what} is not a directory (a symlink or a file was put there while kiln wrote into it); nothing was written through it`);
}

/**
 * Opens the directory `name` in `dirFd` without following a symlink: an O_PATH descriptor (for
 * lookups, listing through /proc/self/fd and fstat), or with `metadata` one that fchmod, fchown
 * and futimes take (an O_PATH descriptor takes none of them). Anything else there is refused,
 * naming `what`.
 */
export function openDirAt(dirFd: number, name: string, what: string, metadata = false): number {
  try {
    return openSync(pathAt(dirFd, name), (metadata ? constants.O_RDONLY : O_PATH) | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENOENT') throw notADirectory(what);
    throw e;
  }
}

/** Removes whatever `name` is in `dirFd`, a directory with everything in it; a symlink is removed, never followed. */
export function removeAt(dirFd: number, name: string, what: string): void {
  const st = statAt(dirFd, name, what);
  if (!st) return;
  if (!isDirMode(st.mode)) {
    unlinkSync(pathAt(dirFd, name));
    return;
  }
  // each level opened without following: a subdirectory swapped for a symlink meanwhile is refused, not emptied
  const fd = openDirAt(dirFd, name, what);
  try {
    for (const child of readdirSync(fdPath(fd))) removeAt(fd, child, `${what}/${child}`);
  } finally {
    closeSync(fd);
  }
  rmdirSync(pathAt(dirFd, name));
}

/**
 * Makes `name` in `dirFd` a directory: one already there is kept, anything else (a symlink, a
 * file) is replaced by a new one, made with `mode` (before the umask; 0700 for one whose mode the
 * caller sets afterwards through a descriptor).
 */
export function ensureDirAt(dirFd: number, name: string, what: string, mode = 0o700): void {
  const st = statAt(dirFd, name, what);
  if (st && isDirMode(st.mode)) return;
  if (st) removeAt(dirFd, name, what);
  mkdirSync(pathAt(dirFd, name), mode);
}

/** open(2) flags of a file kiln creates on the host: O_EXCL with O_NOFOLLOW, so it is new, never one that was there or one a symlink leads to. */
export const CREATE_NEW = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/**
 * Creates the regular file `name` in `dirFd` (mode 0600 until the caller sets it through the
 * descriptor) and returns it open for writing. Whatever held the name is removed first, without
 * following it; the common case, a free name, costs one open.
 */
export function createFileAt(dirFd: number, name: string, what: string): number {
  try {
    return openSync(pathAt(dirFd, name), CREATE_NEW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  removeAt(dirFd, name, what);
  return openSync(pathAt(dirFd, name), CREATE_NEW, 0o600);
}
