import { closeSync, lstatSync, readSync } from 'node:fs';
import { openListed } from '../layer/tar-writer.js';
import { KilnError } from '../errors/index.js';
import { hostPathInRoot } from './rootfs-path.js';
import { parseGroup, parsePasswd, userDbTooLarge, USER_DB_LIMIT, type PasswdEntry } from '../image/passwd.js';

/** A process identity inside the container, resolved against the image's own /etc/passwd and /etc/group. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups (the primary gid first, as `id` shows them under Docker). */
  additionalGids: number[];
  /** From /etc/passwd; "/" when unknown. */
  home: string;
  name?: string;
}

/**
 * The image's user database as text; '' when it is missing or not a regular
 * file. Read from the host side through the rootfs mount, which keeps device
 * nodes working: a FIFO there would block kiln in open(2) beyond any signal,
 * and a device node would be the host's device. So the type is checked
 * before the open, the open neither follows a final symlink nor blocks, and
 * the descriptor must still be that regular file.
 */
function readRootFile(root: string, path: string): string {
  let fd: number;
  let size: number;
  try {
    const host = hostPathInRoot(root, path);
    const st = lstatSync(host, { throwIfNoEntry: false });
    if (!st?.isFile()) return '';
    size = st.size;
    // the layer writer's open of a listed source: no final symlink, no blocking, and still that inode
    fd = openListed(host, st, () => new KilnError('RUN_FAILED', `${path} in the image changed while kiln read it`));
  } catch {
    // unreadable is absent, as before: a name then fails as "unable to find user"
    return '';
  }
  try {
    if (size > USER_DB_LIMIT) throw new KilnError('RUN_FAILED', userDbTooLarge(path, size));
    const buf = Buffer.alloc(size);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

const NUMERIC = /^\d+$/;

/**
 * Docker's rules (runc's GetExecUser): a name must exist in /etc/passwd; a
 * numeric uid need not (gid 0 then); an explicit group replaces the primary
 * group and suppresses supplementary groups; otherwise every group listing
 * the user's name is added.
 */
export async function resolveUser(rootfs: string, spec: string | undefined): Promise<ResolvedUser> {
  const text = (spec ?? '').trim();
  const [userPart = '', groupPart] = text === '' ? ['root', undefined] : splitOnce(text, ':');
  const passwd = parsePasswd(readRootFile(rootfs, '/etc/passwd'));
  const groups = parseGroup(readRootFile(rootfs, '/etc/group'));

  let entry: PasswdEntry | undefined;
  if (NUMERIC.test(userPart)) {
    entry = passwd.find((p) => p.uid === Number(userPart));
  } else {
    entry = passwd.find((p) => p.name === userPart);
    if (!entry) {
      // root needs no passwd entry (FROM scratch images have none)
      if (userPart === 'root') entry = { name: 'root', uid: 0, gid: 0, home: '/root' };
      else throw new KilnError('RUN_FAILED', `unable to find user ${userPart}: no matching entries in passwd file`);
    }
  }
  const uid = entry ? entry.uid : Number(userPart);
  let gid = entry ? entry.gid : 0;
  let additional: number[] = [];
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMERIC.test(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw new KilnError('RUN_FAILED', `unable to find group ${groupPart}: no matching entries in group file`);
      gid = g.gid;
    }
  } else if (entry) {
    const name = entry.name;
    additional = groups.filter((g) => g.members.includes(name)).map((g) => g.gid);
  }
  const additionalGids = [...new Set([gid, ...additional])];
  const out: ResolvedUser = { uid, gid, additionalGids, home: entry?.home ?? '/' };
  if (entry) out.name = entry.name;
  return out;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}
