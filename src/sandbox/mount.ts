import { closeSync, mkdirSync, openSync, readFileSync, rmdirSync } from 'node:fs';
import { release } from 'node:os';
import { KilnError } from '../errors/index.js';
import { errno, libc } from '../sys/libc.js';
import { rootlessSession } from '../rootless/session.js';

/**
 * mount(2)/umount2(2) through the shared libc handle. Node has no binding for
 * them and shelling out to mount(8) costs a process per RUN; these calls only
 * touch the host mount namespace (the container's own mounts are made by the
 * OCI runtime inside its namespace).
 */

type NativeFn = ReturnType<ReturnType<typeof libc>['func']>;
let mountFn: NativeFn | undefined;
let umount2Fn: NativeFn | undefined;

export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MNT_DETACH = 0x2;
const EINVAL = 22;
const ENOENT = 2;
const EBUSY = 16;

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM', 2: 'ENOENT', 13: 'EACCES', 16: 'EBUSY', 19: 'ENODEV', 20: 'ENOTDIR', 22: 'EINVAL', 36: 'ENAMETOOLONG', 40: 'ELOOP',
};

function errnoName(e: number): string {
  return ERRNO_NAMES[e] ?? `errno ${e}`;
}

export class MountError extends KilnError {
  readonly errno: number;
  constructor(message: string, err: number) {
    super('SANDBOX', message);
    this.errno = err;
  }
}

export function mount(source: string, target: string, fstype: string, flags: number, data: string | null): void {
  mountFn ??= libc().func('int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const char *data)');
  // in a user namespace overlayfs may only use user.overlay.* xattrs, where kiln's snapshots then keep their markers
  if (fstype === 'overlay' && data !== null && rootlessSession()) data = `${data},userxattr`;
  const rc = mountFn(source, target, fstype, flags, data) as number;
  if (rc !== 0) {
    const e = errno();
    throw new MountError(`mount ${fstype} on ${target} failed: ${errnoName(e)}`, e);
  }
}

/** Unmounts `target`; a lazy detach is the fallback when something still holds it busy. Missing or unmounted targets are not errors. */
export function unmount(target: string): void {
  umount2Fn ??= libc().func('int umount2(const char *target, int flags)');
  if ((umount2Fn(target, 0) as number) === 0) return;
  const e = errno();
  if (e === EINVAL || e === ENOENT) return;
  if (e === EBUSY && (umount2Fn(target, MNT_DETACH) as number) === 0) return;
  const e2 = errno();
  throw new MountError(`umount ${target} failed: ${errnoName(e2)}`, e2);
}

/**
 * Options that keep the upperdir a plain diff: without redirect_dir a renamed
 * directory is copied up whole, without metacopy a chmod copies the data,
 * without index no hardlink bookkeeping lives in workdir. `volatile` stops
 * the unmount from syncing the whole upper file system (measured: cleanup of
 * a `RUN true` 12 ms instead of 25–35 ms while other writers are busy); the
 * upperdir is read once and deleted, and the layer blob is fsynced by the
 * store, so nothing relies on that sync. A kernel that does not know one of
 * them rejects the mount, so the accepted set is probed once.
 */
// with userxattr (rootless) the kernel takes only redirect_dir=nofollow, which likewise creates no redirects
const WANTED_OPTIONS = [rootlessSession() ? 'redirect_dir=nofollow' : 'redirect_dir=off', 'metacopy=off', 'index=off', 'volatile'];
let acceptedOptions: string[] | undefined;

export interface OverlayDirs {
  /** Topmost first, as overlayfs wants them. Empty means a scratch base: an empty lower is supplied. */
  lowerdirs: string[];
  upperdir: string;
  workdir: string;
  target: string;
  /** An empty directory to stand in as lowerdir when `lowerdirs` is empty. */
  emptyLower: string;
}

/** The kernel's limit on mount data is one page. */
const PAGE = 4096;

/**
 * The lowerdir option for `lowers`. Long stacks (or paths holding `:` or `,`)
 * name each lower as /proc/self/fd/N, ~18 bytes each; the kernel resolves the
 * magic link at mount time, so the fds pushed to `fds` may close right after.
 */
function lowerdirSpec(lowers: readonly string[], otherOptionsLength: number, fds: number[]): string {
  const plain = lowers.join(':');
  if (plain.length + otherOptionsLength < PAGE && !lowers.some((l) => /[:,]/.test(l))) return plain;
  for (const l of lowers) fds.push(openSync(l, 'r'));
  return fds.map((fd) => `/proc/self/fd/${fd}`).join(':');
}

/** Length of the longest lower name the fd form uses ("/proc/self/fd/N:" with N below 100000). */
const FD_LOWER_LENGTH = '/proc/self/fd/99999:'.length;
/** Option bytes beside lowerdir= of a read-only merge. */
const READONLY_OPTIONS_LENGTH = 40;

/** How many lowers surely fit one mount's option page next to `otherOptionsLength` bytes of other options. */
function lowersPerMount(otherOptionsLength: number): number {
  return Math.floor((PAGE - 1 - otherOptionsLength - 'lowerdir='.length) / FD_LOWER_LENGTH);
}

/** The deepest stack two mounts can hold (the limit kiln reports). */
export function maxLayers(otherOptionsLength: number): number {
  return lowersPerMount(otherOptionsLength) - 1 + lowersPerMount(READONLY_OPTIONS_LENGTH);
}

/**
 * Mounts `lowers` through `mountTop`, folding a stack too deep for one mount:
 * the kernel takes at most one page of overlay options, which holds about
 * 200 lowers even as short /proc/self/fd names. The deepest lowers are then
 * merged first into a read-only overlay at `<target>.base`, which becomes a
 * single lower of the top mount. overlayfs keeps a private clone of each
 * lower mount, so the base mount point is unmounted and removed right away:
 * callers see one mount, as before. overlayfs allows one such level of
 * nesting (the kernel's stack depth limit is 2), hence the ceiling of two
 * mounts' worth of layers, which `maxLayers` states.
 */
function withFoldedLowers(lowers: readonly string[], otherOptionsLength: number, target: string, mountTop: (lowers: readonly string[]) => void): void {
  const perMount = lowersPerMount(otherOptionsLength);
  const plainFits = lowers.join(':').length + otherOptionsLength < PAGE && !lowers.some((l) => /[:,]/.test(l));
  if (plainFits || lowers.length <= perMount) {
    mountTop(lowers);
    return;
  }
  const keep = perMount - 1;
  const folded = lowers.slice(keep);
  const limit = maxLayers(otherOptionsLength);
  if (lowers.length > limit) {
    throw new KilnError('UNSUPPORTED', `the image has ${lowers.length} layers; kiln can stack at most ${limit} in one overlay mount`, {
      hint: 'overlayfs takes one page of mount options and one level of nesting; squash layers (fewer RUN/COPY steps, or a multi-stage build copying the result)',
    });
  }
  const base = `${target}.base`;
  mkdirSync(base, { mode: 0o700 });
  try {
    mountFlatReadonly(folded, base);
    try {
      mountTop([...lowers.slice(0, keep), base]);
    } finally {
      unmount(base);
    }
  } finally {
    rmdirSync(base);
  }
}

function mountFlatReadonly(lowers: readonly string[], target: string): void {
  const fds: number[] = [];
  try {
    mount('overlay', target, 'overlay', MS_RDONLY, `lowerdir=${lowerdirSpec(lowers, READONLY_OPTIONS_LENGTH, fds)}`);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** A read-only merged view of `lowers` (topmost first, at least two): overlay without an upperdir. */
export function mountReadonlyLayers(lowers: readonly string[], target: string): void {
  withFoldedLowers(lowers, READONLY_OPTIONS_LENGTH, target, (ls) => mountFlatReadonly(ls, target));
}

export function mountOverlay(dirs: OverlayDirs): void {
  const lowers = dirs.lowerdirs.length > 0 ? dirs.lowerdirs : [dirs.emptyLower];
  const other = dirs.upperdir.length + dirs.workdir.length + 120;
  withFoldedLowers(lowers, other, dirs.target, (ls) => mountOverlayFlat(dirs, ls, other));
}

function mountOverlayFlat(dirs: OverlayDirs, lowers: readonly string[], otherOptionsLength: number): void {
  const fds: number[] = [];
  try {
    const lowerSpec = lowerdirSpec(lowers, otherOptionsLength, fds);
    const base = `lowerdir=${lowerSpec},upperdir=${dirs.upperdir},workdir=${dirs.workdir}`;
    if (base.length >= PAGE) {
      throw new KilnError('UNSUPPORTED', `overlay mount options exceed one page (${lowers.length} layers)`, { hint: 'a shorter store path leaves room for more layers' });
    }
    if (acceptedOptions) {
      mount('overlay', dirs.target, 'overlay', 0, [base, ...acceptedOptions].join(','));
      return;
    }
    try {
      mount('overlay', dirs.target, 'overlay', 0, [base, ...WANTED_OPTIONS].join(','));
      acceptedOptions = WANTED_OPTIONS;
      return;
    } catch (e) {
      if (!(e instanceof MountError) || e.errno !== EINVAL) throw e;
    }
    const ok: string[] = [];
    for (const opt of WANTED_OPTIONS) {
      try {
        mount('overlay', dirs.target, 'overlay', 0, [base, ...ok, opt].join(','));
        unmount(dirs.target);
        ok.push(opt);
      } catch (e) {
        if (!(e instanceof MountError) || e.errno !== EINVAL) throw e;
      }
    }
    acceptedOptions = ok;
    mount('overlay', dirs.target, 'overlay', 0, [base, ...ok].join(','));
  } finally {
    for (const fd of fds) closeSync(fd);
  }
}

/** The overlay options this kernel accepted (after the first mount). */
export function overlayOptions(): readonly string[] | undefined {
  return acceptedOptions;
}

/**
 * The OCI mount options of a read-only bind. "ro" alone makes only the bind itself read-only:
 * a mount under its source (a file system mounted inside a `kiln run -v` directory or inside the
 * build context) stays writable in the container, and writes there reach the host. "rro" (runc
 * 1.1, crun 1.4) makes the bind and every mount under it read-only with mount_setattr(2), which
 * Linux has since 5.12; Docker does the same for `-v …:ro` where the kernel allows. On an older
 * kernel runc would fail the mount, so there only "ro" is given. (A runtime older than the option
 * passes it to mount(2) as data, which a bind ignores.)
 */
export function readonlyBindOptions(kernel = release()): string[] {
  return hasMountSetattr(kernel) ? ['ro', 'rro'] : ['ro'];
}

/** Whether a kernel release string ("6.1.0-18-amd64") is Linux 5.12 or later. */
export function hasMountSetattr(kernel: string): boolean {
  const m = /^(\d+)\.(\d+)/.exec(kernel);
  if (!m) return false;
  const [major, minor] = [Number(m[1]), Number(m[2])];
  return major > 5 || (major === 5 && minor >= 12);
}

export function mountTmpfs(target: string, opts: { size?: number; mode?: number } = {}): void {
  const data = [`mode=${(opts.mode ?? 0o700).toString(8)}`];
  if (opts.size !== undefined) data.push(`size=${opts.size}`);
  mount('tmpfs', target, 'tmpfs', MS_NOSUID | MS_NODEV, data.join(','));
}

export interface MountInfo {
  id: number;
  parent: number;
  mountPoint: string;
  fsType: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Synchronous: mountinfo is small and read on every RUN's cleanup. */
export function readMountinfo(): MountInfo[] {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-');
    out.push({
      id: Number(f[0]),
      parent: Number(f[1]),
      mountPoint: unescapeMountinfo(f[4] ?? ''),
      fsType: f[sep + 1] ?? '',
      source: unescapeMountinfo(f[sep + 2] ?? ''),
    });
  }
  return out;
}

/** Mount points at or below `dir`, deepest first (the order they must be unmounted in). */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const all = readMountinfo();
  return all
    .map((m) => m.mountPoint)
    .filter((p) => p === dir || p.startsWith(prefix))
    .sort((a, b) => b.length - a.length);
}
