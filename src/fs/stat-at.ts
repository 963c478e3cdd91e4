import { closeSync, constants, existsSync, fstatSync, lstatSync, openSync } from 'node:fs';
import { KilnError } from '../errors/index.js';
import { Errno, errno, errnoText, libc, O_PATH } from '../sys/libc.js';

/**
 * What kiln reads of a stat: the fields of Node's `Stats` that a tree node and the hash cache use.
 * Node's `Stats` has them all, so either source fits.
 */
export interface StatFields {
  /** st_mode: file type bits and permission bits */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  dev: number;
  ino: number;
  nlink: number;
  rdev: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** A directory's identity: what a descriptor opened on it later must still name. */
export interface DirIdentity {
  dev: number;
  ino: number;
}

const AT_SYMLINK_NOFOLLOW = 0x100;
const AT_NO_AUTOMOUNT = 0x800;
// STATX_BASIC_STATS: type, mode, nlink, uid, gid, times, ino, size, blocks
const STATX_BASIC_STATS = 0x7ff;
const { ENOENT, EINTR, ENOTDIR, EPERM, ENOSYS, ENAMETOOLONG } = Errno;

type StatxFn = (dirfd: number, path: string, flags: number, mask: number, buf: Buffer) => number;
let statxFn: StatxFn | undefined;
/** statx(2) refused (a kernel before 4.11, a seccomp filter): the descriptor's /proc path instead. */
let noStatx = false;

// struct statx is the same on every architecture (unlike struct stat), 256 bytes.
const buf = Buffer.alloc(256);
const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);

/**
 * lstat of `name` inside the directory open as `dirFd`, or undefined when there is no such entry.
 * The lookup starts at that very directory, whatever its path now leads to: a directory of a tree
 * swapped for a symlink after it was opened cannot redirect what is found in it. Through statx(2)
 * it is also cheaper than Node's lstat of a whole path (no Stats object, no four Date objects).
 */
export function statAt(dirFd: number, name: string, what = `"${name}"`): StatFields | undefined {
  if (!noStatx) {
    statxFn ??= libc().func('int statx(int dirfd, const char *path, int flags, unsigned int mask, _Out_ uint8_t *buf)') as StatxFn;
    for (;;) {
      if (statxFn(dirFd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS, buf) === 0) return fromStatx();
      const e = errno();
      if (e === EINTR) continue;
      if (e === ENOENT || e === ENOTDIR) return undefined;
      if (e === ENOSYS || e === EPERM) {
        noStatx = true;
        break;
      }
      throw new KilnError('CONTEXT', `cannot read ${what}: ${errnoText(e)}`);
    }
  }
  return statViaProcFd(dirFd, name);
}

/** statAt's fallback: the magic link names the open directory itself, so this lookup cannot be redirected either. */
export function statViaProcFd(dirFd: number, name: string): StatFields | undefined {
  if (!hasProcFd()) throw new KilnError('UNSUPPORTED', 'reading a tree without following its symlinks needs statx(2) or /proc/self/fd, and this system refuses the first and has not mounted the second');
  return lstatSync(`/proc/self/fd/${dirFd}/${name}`, { throwIfNoEntry: false });
}

let procFd: boolean | undefined;
/** Whether /proc/self/fd is there: names of an open directory are read through it. Looked at once, when first needed. */
export function hasProcFd(): boolean {
  procFd ??= existsSync('/proc/self/fd');
  return procFd;
}

type ReadlinkatFn = (dirfd: number, path: string, buf: Buffer, size: number) => number | bigint;
let readlinkatFn: ReadlinkatFn | undefined;
const linkBuf = Buffer.alloc(4097);

/** The target of the symlink `name` in the directory open as `dirFd` (readlinkat(2): no path, no /proc). */
export function readlinkAt(dirFd: number, name: string, what = `"${name}"`): string {
  readlinkatFn ??= libc().func('long readlinkat(int dirfd, const char *path, _Out_ uint8_t *buf, size_t size)') as ReadlinkatFn;
  for (;;) {
    const n = Number(readlinkatFn(dirFd, name, linkBuf, linkBuf.length));
    if (n >= 0 && n < linkBuf.length) return linkBuf.toString('utf8', 0, n);
    const e = n < 0 ? errno() : ENAMETOOLONG; // a target longer than PATH_MAX
    if (e === EINTR) continue;
    throw new KilnError('CONTEXT', `cannot read the symlink ${what}: ${errnoText(e)}`);
  }
}

function fromStatx(): StatFields {
  const sec = (o: number): number => i64(o) * 1000 + view.getUint32(o + 8, true) / 1e6;
  return {
    mode: view.getUint16(28, true),
    uid: view.getUint32(20, true),
    gid: view.getUint32(24, true),
    size: u64(40),
    dev: makedev(view.getUint32(136, true), view.getUint32(140, true)),
    ino: u64(32),
    nlink: view.getUint32(16, true),
    rdev: makedev(view.getUint32(128, true), view.getUint32(132, true)),
    // as Node computes them from the same fields: seconds × 1000 + nanoseconds ÷ 10⁶
    mtimeMs: sec(112),
    ctimeMs: sec(96),
  };
}

/** A 64-bit field as Node gives it (a double; exact below 2⁵³). */
function u64(o: number): number {
  const hi = view.getUint32(o + 4, true);
  return hi < 0x200000 ? hi * 0x100000000 + view.getUint32(o, true) : Number(view.getBigUint64(o, true));
}

/** A signed 64-bit field (a time's seconds, negative before 1970). */
function i64(o: number): number {
  const hi = view.getInt32(o + 4, true);
  return hi >= -0x200000 && hi < 0x200000 ? hi * 0x100000000 + view.getUint32(o, true) : Number(view.getBigInt64(o, true));
}

/** glibc's makedev, as libuv builds st_dev and st_rdev from statx's major and minor. */
export function makedev(major: number, minor: number): number {
  if (major < 0x1000) return (major & 0xfff) * 0x100 + (minor & 0xff) + (minor - (minor & 0xff)) * 0x1000;
  const big = (BigInt(major & 0xfff) << 8n) | (BigInt(major >>> 12) << 44n) | BigInt(minor & 0xff) | (BigInt(minor >>> 8) << 20n);
  return Number(big);
}

// O_PATH: a lookup in a directory needs only its search permission, not read permission (an
// execute-only directory stays usable, as it is for a path lookup); Node opens every descriptor
// close-on-exec itself.
const DIR_FLAGS = O_PATH | constants.O_DIRECTORY;

/**
 * Opens the directory `hostPath` (an O_PATH descriptor: for lookups relative to it, fstat, and
 * `/proc/self/fd/N` to list it) and checks that it is still `expected` (the directory first seen
 * there). A directory, or one above it, swapped for a symlink or another directory since is refused
 * with `replaced()`'s error. `follow` lets the last component be a symlink (the context root, whose
 * path the user named); every other directory is opened with O_NOFOLLOW.
 */
export function openDirChecked(hostPath: string, expected: DirIdentity, follow: boolean, replaced: () => KilnError): number {
  let fd: number;
  try {
    fd = openSync(hostPath, follow ? DIR_FLAGS : DIR_FLAGS | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENOENT') throw replaced();
    throw e;
  }
  const st = fstatSync(fd);
  if (st.dev !== expected.dev || st.ino !== expected.ino) {
    closeSync(fd);
    throw replaced();
  }
  return fd;
}
