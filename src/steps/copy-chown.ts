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
 * `--chown` (and WORKDIR's owner) → numeric owner, resolved against the destination image's own
 * /etc/passwd and /etc/group (never the build machine's), exactly as BuildKit does it (llb's
 * WithUser, the solver's readUser): `root` is 0 without a lookup (so `FROM scratch` +
 * `--chown=root:root` works), a number that fits in 32 bits is an id, and a bare user or uid gives
 * its group too (the passwd entry's, or the uid). A name the image does not have (or an image
 * without the file) gives 0 for a user and leaves the group as the user part gave it: BuildKit
 * copies with those ids and says nothing, and so does kiln (it used to fail the build instead).
 */
export async function resolveChown(spec: string | undefined, image: FsView | undefined): Promise<Owner> {
  if (spec === undefined || spec === '') return { uid: 0, gid: 0 };
  const colon = spec.indexOf(':');
  const user = colon < 0 ? spec : spec.slice(0, colon);
  const group = colon < 0 ? undefined : spec.slice(colon + 1);
  let uid = 0;
  let gid = 0;
  const userId = idOf(user);
  if (userId !== undefined) {
    uid = userId;
    gid = userId;
  } else {
    const entry = parsePasswd(await readDb(image, 'etc/passwd')).find((p) => p.name === user);
    if (entry) {
      uid = entry.uid;
      gid = entry.gid;
    }
  }
  if (group !== undefined) {
    const groupId = idOf(group);
    if (groupId !== undefined) gid = groupId;
    else {
      const entry = parseGroup(await readDb(image, 'etc/group')).find((g) => g.name === group);
      if (entry) gid = entry.gid;
    }
  }
  assertMappedOwner(uid, gid);
  return { uid, gid };
}

/** llb's parseUID: `root` is 0, a decimal that fits a signed 32-bit integer is itself; anything else is a name. */
function idOf(s: string): number | undefined {
  if (s === 'root') return 0;
  if (!/^[0-9]+$/.test(s) || Number(s) > 0x7fffffff) return undefined;
  return Number(s);
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
