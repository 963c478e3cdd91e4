import { KilnError } from '../errors/index.js';
import type { FsView } from '../context/fs-view.js';
import { resolvePath } from '../context/fs-view.js';
import { parseGroup, parsePasswd, userDbTooLarge, USER_DB_LIMIT } from '../image/passwd.js';
import { assertMappedOwner } from '../rootless/failures.js';

export interface Owner {
  uid: number;
  gid: number;
}

/**
 * `--chown` → numeric owner, resolved against the destination image's own
 * /etc/passwd and /etc/group (never the build machine's). A bare user takes its
 * primary group from passwd; a bare numeric uid uses the same number as gid,
 * as BuildKit does.
 */
export async function resolveChown(spec: string | undefined, image: FsView | undefined): Promise<Owner> {
  if (spec === undefined || spec === '') return { uid: 0, gid: 0 };
  const colon = spec.indexOf(':');
  const user = colon < 0 ? spec : spec.slice(0, colon);
  const group = colon < 0 ? undefined : spec.slice(colon + 1);
  let uid: number;
  let gid: number;
  if (isId(user)) {
    uid = Number(user);
    gid = uid;
  } else {
    const entry = parsePasswd(await readDb(image, 'etc/passwd')).find((p) => p.name === user);
    if (!entry) throw new KilnError('CONTEXT', `unable to find user ${user}: no matching entries in passwd file`);
    uid = entry.uid;
    gid = entry.gid;
  }
  if (group !== undefined && group !== '') {
    if (isId(group)) gid = Number(group);
    else {
      const entry = parseGroup(await readDb(image, 'etc/group')).find((g) => g.name === group);
      if (!entry) throw new KilnError('CONTEXT', `unable to find group ${group}: no matching entries in group file`);
      gid = entry.gid;
    }
  }
  assertMappedOwner(uid, gid);
  return { uid, gid };
}

function isId(s: string): boolean {
  return /^[0-9]+$/.test(s);
}

async function readDb(image: FsView | undefined, path: string): Promise<string> {
  if (!image) return '';
  const resolved = resolvePath(image, path, { followFinal: true });
  const node = image.lstat(resolved);
  if (node?.type !== 'file') return '';
  // bounded as USER's reader is: an image's "user database" may be gigabytes
  if (node.size > USER_DB_LIMIT) throw new KilnError('CONTEXT', userDbTooLarge(`/${path}`, node.size));
  const chunks: Buffer[] = [];
  for await (const c of image.open(resolved)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
