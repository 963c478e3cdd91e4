import { readFileSync } from 'node:fs';
import { KilnError } from '../errors/index.js';
import { hostPathInRoot } from './rootfs-path.js';

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

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function readRootFile(root: string, path: string): string {
  try {
    return readFileSync(hostPathInRoot(root, path), 'utf8');
  } catch {
    return '';
  }
}

export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    if (!Number.isInteger(uid) || !Number.isInteger(gid)) continue;
    out.push({ name: f[0] ?? '', uid, gid, home: f[5] || '/' });
  }
  return out;
}

export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3) continue;
    const gid = Number(f[2]);
    if (!Number.isInteger(gid)) continue;
    out.push({ name: f[0] ?? '', gid, members: (f[3] ?? '').split(',').map((s) => s.trim()).filter(Boolean) });
  }
  return out;
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
