import { KilnError, isKilnError, type SourceLocation } from '../errors/index.js';
import { mappedSpan, rootlessSession, type RootlessSession } from './session.js';

/**
 * Inside the user namespace the kernel answers EINVAL to a chown to an id
 * that has no mapping, EPERM to mknod of a device and to an overlay mount it
 * does not allow for unprivileged users. Deep in a step that is a bare errno;
 * this turns it into one line naming the range or the missing capability.
 * Returns undefined outside rootless mode or for other errors.
 */
function outOfRange(session: RootlessSession, what: string, location: SourceLocation | undefined, cause?: unknown): KilnError {
  const opts = { ...(location ? { location } : {}), ...(cause === undefined ? {} : { cause }) };
  if (session.single) {
    return new KilnError('ROOTLESS', `rootless: ${what} other than root, but only uid ${session.uid} is mapped (no subordinate ids for ${session.user})`, {
      ...opts,
      hint: `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${session.user}`,
    });
  }
  const u = mappedSpan(session.uidMap);
  const g = mappedSpan(session.gidMap);
  return new KilnError('ROOTLESS', `rootless: ${what} outside the ids mapped for ${session.user}: uids ${u.first}-${u.last}, gids ${g.first}-${g.last} (from /etc/subuid and /etc/subgid)`, {
    ...opts,
    hint: 'a larger range in /etc/subuid and /etc/subgid (usermod --add-subuids/--add-subgids) maps more ids',
  });
}

/** COPY --chown and the like: an owner the namespace cannot represent is refused before anything is written. */
export function assertMappedOwner(uid: number, gid: number, session: RootlessSession | undefined = rootlessSession()): void {
  if (!session) return;
  if (uid > mappedSpan(session.uidMap).last || gid > mappedSpan(session.gidMap).last) throw outOfRange(session, `owner ${uid}:${gid} is`, undefined);
}

export function rootlessFailure(e: unknown, session: RootlessSession | undefined = rootlessSession()): KilnError | undefined {
  if (!session || (isKilnError(e) && e.code === 'ROOTLESS')) return undefined;
  const location = isKilnError(e) ? e.location : undefined;
  const make = (message: string, hint: string): KilnError => new KilnError('ROOTLESS', `rootless: ${message}`, { ...(location ? { location } : {}), hint, cause: e });
  for (let cur: unknown = e; cur instanceof Error; cur = cur.cause) {
    const errno = cur as NodeJS.ErrnoException;
    const syscall = errno.syscall ?? /^(?:EINVAL|EPERM): [^,]*, (\w+)/.exec(cur.message)?.[1];
    const code = errno.code ?? /^(EINVAL|EPERM)\b/.exec(cur.message)?.[1];
    if (code === 'EINVAL' && syscall && /^[lf]?chown$/.test(syscall)) {
      return outOfRange(session, 'a file has an owner', location, e);
    }
    if ((code === 'EPERM' && syscall === 'mknod') || /^mknod .* failed \(errno 1\)$/.test(cur.message)) {
      return make('a layer holds a device node, which cannot be created in a user namespace', 'build as root, or remove the device node from the image');
    }
    if (/^mount overlay on .* failed: EINVAL$/.test(cur.message)) {
      return make('overlay refused the store as upper layer (is the store itself on overlayfs, e.g. a container\'s root file system?)', 'keep the store on a volume: --root DIR or KILN_ROOT on an emptyDir/bind mount');
    }
    if (/^mount overlay on .* failed: EPERM$/.test(cur.message)) {
      return make('the kernel does not allow overlay mounts in a user namespace (needs Linux 5.11 or later)', 'run kiln as root on this kernel');
    }
  }
  return undefined;
}
