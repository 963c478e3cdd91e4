/**
 * An image's own /etc/passwd and /etc/group, as USER (the sandbox) and
 * COPY --chown (the COPY planner) resolve names against them. Malformed lines
 * are skipped, as libc's getpwent does.
 */
/** The most of /etc/passwd or /etc/group kiln reads (a database of 100,000 users is about 6 MB). */
export const USER_DB_LIMIT = 16 * 1024 * 1024;

/** The one-line error for a user database over USER_DB_LIMIT. */
export function userDbTooLarge(path: string, size: number): string {
  return `${path} in the image is ${size} bytes, over kiln's limit of ${USER_DB_LIMIT / (1024 * 1024)} MiB for a user database`;
}

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
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
