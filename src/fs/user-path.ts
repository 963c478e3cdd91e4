import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KilnError } from '../errors/index.js';

const S_ISVTX = 0o1000;

/**
 * An output path the user typed, with a symlink at its end followed as the
 * kernel's `fs.protected_symlinks` would let it be followed (not every
 * machine turns that on): not when the link sits in a sticky world-writable
 * directory such as /tmp and belongs neither to the user kiln runs as nor to
 * that directory's owner, since anyone may have put it there. Elsewhere a
 * symlink the user points kiln at (`dest=./public` → `../site/public`) is
 * what they meant, as Docker follows it. Returns the path to write to: the
 * link's target when followed, `path` itself when nothing is at it, it is no
 * symlink, or the link dangles (it is then replaced, never written through).
 * `what` names the option in the error (`--iidfile`).
 */
export function followUserLink(path: string, what: string): string {
  // every directory on the way is held to the same rule: /tmp/out/x with /tmp/out another user's
  // link would otherwise lead kiln into their choice of directory (and -o …,tar=false replaces x there)
  const parts = resolve(path).split('/').filter(Boolean);
  for (let i = 1; i < parts.length; i++) checkLink(`/${parts.slice(0, i).join('/')}`, what);
  const st = checkLink(path, what);
  if (!st?.isSymbolicLink()) return path;
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

/**
 * Whether the entry at `path`, owned by `uid`, may have been put there by anyone: it sits in a
 * sticky world-writable directory (/tmp) and belongs neither to the user kiln runs as nor to that
 * directory's owner. The kernel's protected_symlinks and protected_fifos rules, which not every
 * machine turns on.
 */
export function plantedByAnother(path: string, uid: number): boolean {
  const dir = statSync(dirname(path));
  const shared = (dir.mode & S_ISVTX) !== 0 && (dir.mode & 0o002) !== 0;
  return shared && uid !== (process.geteuid?.() ?? 0) && uid !== dir.uid;
}

/** lstat of `path`, refusing it when it is a symlink protected_symlinks would not follow (see followUserLink). */
function checkLink(path: string, what: string): Stats | undefined {
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (!st?.isSymbolicLink()) return st;
  if (plantedByAnother(path, st.uid)) {
    throw new KilnError('UNSAFE_PATH', `${what}: ${path} is a symlink another user (uid ${st.uid}) made in a shared directory; kiln does not follow it`, { hint: 'name what it points to, or write somewhere else' });
  }
  return st;
}
