import { closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, realpathSync, type Stats } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { KilnError } from '../errors/index.js';
import { followUserLink } from '../fs/user-path.js';
import { rootlessSession } from '../rootless/session.js';
import { storeLayout, type StoreLayout } from './layout.js';

/**
 * The store root, the snapshots and the RUN scratch dirs are private to the
 * store's owner. Snapshots are image file systems unpacked as they are:
 * setuid-root binaries and device nodes a hostile image chose the modes of. A
 * path to them that another local user can traverse is a local root (the
 * class of Docker's CVE-2021-41091), so the root is 0700, not 0711: unlike
 * Docker with user-namespace remapping, no process of another uid ever needs
 * to traverse it (runc resolves the rootfs as root and pivots into it). The
 * snapshot and scratch parents are 0700 as well, so a root loosened by hand
 * to share the OCI layout still exposes no unpacked file system.
 */
export const PRIVATE_DIR_MODE = 0o700;
/** Every other directory of the store: what a umask of 022 gives, whatever the umask is. */
export const STORE_DIR_MODE = 0o755;
/** Files kiln creates in the store (blobs, records, lock files): explicit, so a umask of 000 makes none writable by others. */
export const STORE_FILE_MODE = 0o644;

const euid = (): number => process.geteuid?.() ?? 0;

/**
 * "uid N, not by uid M that runs kiln". In a rootless session both are ids in
 * kiln's user namespace (the user is 0 there; an unmapped owner shows as the
 * overflow id), so the user is named by the id they know.
 */
function ownerText(uid: number): string {
  const session = rootlessSession();
  if (!session) return `uid ${uid}, not by uid ${euid()} that runs kiln`;
  return `uid ${uid} in kiln's user namespace, not by ${session.user} (uid ${session.uid}) that runs kiln`;
}

/** The private directories (see PRIVATE_DIR_MODE); every other one is STORE_DIR_MODE. */
function modeOf(l: StoreLayout, dir: string): number {
  return dir === l.root || dir === l.snapshots || dir === l.tmp || dir === l.cacheMounts ? PRIVATE_DIR_MODE : STORE_DIR_MODE;
}

/**
 * Checks that `path` is a directory this process owns, never following a
 * symbolic link, and gives it `mode`. Opened with O_NOFOLLOW and changed
 * through the descriptor, so what is checked is what is chmod'ed.
 */
function claimDir(path: string, mode: number, what: string): void {
  const refuse = (why: string, hint: string): KilnError => new KilnError('UNSAFE_PATH', `${what} ${path} ${why}: ${hint}`);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // O_NOFOLLOW on a link fails with ELOOP; O_DIRECTORY on anything else with ENOTDIR
    if (code !== 'ELOOP' && code !== 'ENOTDIR') throw e;
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (st?.isSymbolicLink()) throw refuse('is a symbolic link, which kiln does not follow inside a store', 'remove it, or use a --root of your own');
    throw refuse('is not a directory', 'remove it, or use a --root of your own');
  }
  try {
    const st: Stats = fstatSync(fd);
    // in a rootless session the invoking user is uid 0 of the namespace, so the user's own store passes
    if (st.uid !== euid()) throw refuse(`is owned by ${ownerText(st.uid)}`, 'use a --root of your own');
    if ((st.mode & 0o7777) !== mode) fchmodSync(fd, mode);
  } finally {
    closeSync(fd);
  }
}

/**
 * A directory meant for everyone (sticky, or writable by every user: /tmp, /dev/shm) is never taken
 * as a store root: claiming it would make it 0700, a denial of service for the whole machine, and
 * its other users' files would sit in the store's tmp/, which kiln sweeps.
 */
function refuseSharedDir(path: string): void {
  const st = lstatSync(path);
  if ((st.mode & 0o1000) !== 0 || (st.mode & 0o002) !== 0) {
    throw new KilnError('UNSAFE_PATH', `store root ${path} is a shared directory (${(st.mode & 0o1000) !== 0 ? 'sticky' : 'writable by every user'}): kiln does not take it as its store`, { hint: 'use a directory of its own, such as /var/lib/kiln or a new directory below this one' });
  }
}

/** mkdir of one level, without following a link in its place (mkdir(2) never does). */
function makeOne(path: string, mode: number): void {
  try {
    mkdirSync(path, { mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

/**
 * Makes `dirs`, directories below the store root, and the directories between
 * them and the root: one level at a time from the root down, each checked (a
 * real directory of this process's owner, see claimDir) before the next is
 * made in it, so no symbolic link and no directory another user can write is
 * ever walked through. Modes are explicit and set again when the umask masked
 * them. Each level is checked once per call: a few system calls each, for the
 * dozen directories a command makes.
 */
export function makeStoreDirs(l: StoreLayout, ...dirs: string[]): void {
  claimDir(l.root, PRIVATE_DIR_MODE, 'store root');
  const done = new Set<string>([l.root]);
  for (const dir of dirs) {
    const rel = relative(l.root, dir);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new KilnError('INTERNAL', `${dir} is not below the store root ${l.root}`);
    let cur = l.root;
    for (const part of rel.split(sep).filter(Boolean)) {
      cur = join(cur, part);
      if (done.has(cur)) continue;
      const mode = modeOf(l, cur);
      makeOne(cur, mode);
      claimDir(cur, mode, 'store directory');
      done.add(cur);
    }
  }
}

/**
 * The layout of the store at `root`, with the directories every command uses
 * made and checked. The root is created if missing, then resolved once with
 * realpath (a root that is itself a link, like a Docker data-root moved to
 * another disk, is followed: the user chose it), and everything after uses
 * the resolved path. The resolved root must be a directory owned by this
 * process's effective uid: a store another user controls could point tmp/
 * (swept at open) or any other directory at the user's files.
 */
export function checkedLayout(root: string): StoreLayout {
  const given = storeLayout(root).root;
  try {
    // a link at the root is followed as the kernel's protected_symlinks would let it be: not one
    // another user planted in a sticky world-writable directory (/tmp/kiln-store → their choice of
    // directory, which kiln would then chmod, sweep and fill)
    followUserLink(given, '--root');
    mkdirSync(given, { recursive: true, mode: PRIVATE_DIR_MODE });
    const resolved = realpathSync(given);
    refuseSharedDir(resolved);
    const l = storeLayout(resolved);
    // cache-mounts/ and logs/ are made by their first user; when there, they are checked (and an
    // older kiln's umask-given mode taken back) like the others
    const lazy = [l.cacheMounts, l.logs].filter((d) => lstatSync(d, { throwIfNoEntry: false }) !== undefined);
    makeStoreDirs(l, l.tmp, l.partial, l.snapshots, l.blobs, l.cacheRecords, l.cacheSlots, l.contextHashes, l.locks, l.diffids, l.origins, l.verified, ...lazy);
    return l;
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw new KilnError('STORE', `cannot open store ${given}: ${(e as Error).message}`, { cause: e });
  }
}
