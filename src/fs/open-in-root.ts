import { closeSync, constants, fstatSync, openSync, type Stats } from 'node:fs';
import { KilnError } from '../errors/index.js';
import { Errno, errno, libc, O_PATH } from '../sys/libc.js';
import { escapeError, loopError, segments } from './resolve-in-root.js';

/**
 * resolve-in-root.ts's rules carried out by the kernel: openat2(2) with
 * RESOLVE_IN_ROOT (images, stages) or RESOLVE_BENEATH (the build context), and
 * RESOLVE_NO_MAGICLINKS. The result is an O_PATH descriptor of the file
 * itself, not a path: whatever is renamed or swapped for a symlink after this
 * call, the descriptor still names what was resolved inside the root. Callers
 * that hand the file to another process bind-mount /proc/self/fd/N first.
 */

// Linux's generic numbering (x86_64 and arm64 alike): openat2 is 437 everywhere since 5.6.
const SYS_OPENAT2 = 437;
const O_CLOEXEC = 0o2000000;
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_BENEATH = 0x08;
const RESOLVE_IN_ROOT = 0x10;

const { ENOENT, EINTR, EAGAIN, ENOTDIR, EXDEV, ENOSYS, ELOOP } = Errno;

type Openat2 = (nr: number, ...args: unknown[]) => number | bigint;
let openat2Fn: Openat2 | undefined;

function openat2(dirfd: number, path: string, flags: number, resolve: number): number {
  openat2Fn ??= libc().func('long syscall(long number, ...)') as Openat2;
  // struct open_how { u64 flags; u64 mode; u64 resolve; }
  const how = Buffer.alloc(24);
  how.writeBigUInt64LE(BigInt(flags), 0);
  how.writeBigUInt64LE(BigInt(resolve), 16);
  return Number(openat2Fn(SYS_OPENAT2, 'int', dirfd, 'const char *', path, 'void *', how, 'size_t', how.length));
}

export interface RootedOpen {
  /** An O_PATH descriptor of the resolved file; the caller closes it. */
  fd: number;
  /** fstat of it (O_PATH descriptors can be fstat'ed). */
  stat: Stats;
}

export interface OpenInRootOptions {
  /** Image semantics (absolute links start at the root) or build-context semantics (refused). */
  chroot: boolean;
  /** How errors name the root. */
  label: string;
  /** How errors name the path; default the path. */
  what?: string;
}

/**
 * Opens `path` inside `root`, following every symlink as the tree itself
 * would see it and never leaving the root. `root` itself is trusted (kiln's
 * own mount, the context directory the user named). Throws UNSAFE_PATH for
 * a path that escapes a non-chroot root, NOT_FOUND when it does not exist.
 */
export function openInRoot(root: string, path: string, opts: OpenInRootOptions): RootedOpen {
  const what = opts.what ?? path;
  const rootFd = openSync(root, O_PATH | O_CLOEXEC);
  const rel = segments(path).join('/');
  if (rel === '') return { fd: rootFd, stat: fstatSync(rootFd) };
  try {
    const resolve = (opts.chroot ? RESOLVE_IN_ROOT : RESOLVE_BENEATH) | RESOLVE_NO_MAGICLINKS;
    // EAGAIN: a rename raced a ".." step; the kernel asks for a retry rather than risk an escape.
    for (let attempt = 0; ; attempt++) {
      const fd = openat2(rootFd, rel, O_PATH | O_CLOEXEC, resolve);
      if (fd >= 0) {
        try {
          return { fd, stat: fstatSync(fd) };
        } catch (e) {
          closeSync(fd);
          throw e;
        }
      }
      const e = errno();
      if ((e === EAGAIN || e === EINTR) && attempt < 64) continue;
      throw openError(e, what, opts.label);
    }
  } finally {
    closeSync(rootFd);
  }
}

function openError(e: number, what: string, label: string): KilnError {
  switch (e) {
    case EXDEV:
      return escapeError(what, label);
    case ELOOP:
      return loopError(what);
    case ENOENT:
    case ENOTDIR:
      return new KilnError('NOT_FOUND', `"${what}" not found in ${label}`);
    case ENOSYS:
      return new KilnError('UNSUPPORTED', `resolving "${what}" needs openat2(2) (Linux 5.6 or later), which this kernel or its seccomp filter refuses`);
    default:
      return new KilnError('SANDBOX', `cannot open "${what}" in ${label}: errno ${e}`);
  }
}

/** The descriptor as a path the kernel resolves to exactly that file (magic link), for mount(2) in this process. */
export function fdPath(fd: number): string {
  return `/proc/self/fd/${fd}`;
}

/** A regular file opened for reading inside a root (see openFileInRoot). */
export interface RootedFile {
  /** `/proc/self/fd/N` of the open file: reads through it read exactly that file. */
  path: string;
  close(): void;
}

/**
 * Opens the regular file `path` inside `root` for reading, following symlinks as the tree itself
 * would see them (`chroot`) and never leaving it: for the files a build reads by name from a
 * context that came from elsewhere (its Dockerfile and ignore files in a tar on stdin, a
 * downloaded archive, a git checkout). Undefined when there is no such file; anything but a
 * regular file (a directory, a FIFO that would block the read, a device) is refused.
 */
export function openFileInRoot(root: string, path: string, opts: OpenInRootOptions): RootedFile | undefined {
  let rooted: RootedOpen;
  try {
    rooted = openInRoot(root, path, opts);
  } catch (e) {
    if (e instanceof KilnError && e.code === 'NOT_FOUND') return undefined;
    throw e;
  }
  try {
    if (!rooted.stat.isFile()) throw new KilnError('CONTEXT', `"${opts.what ?? path}" in ${opts.label} is not a regular file`);
    // reopened through the O_PATH descriptor's own link: the very file resolved above
    const fd = openSync(fdPath(rooted.fd), constants.O_RDONLY | O_CLOEXEC);
    return { path: fdPath(fd), close: () => closeSync(fd) };
  } finally {
    closeSync(rooted.fd);
  }
}
