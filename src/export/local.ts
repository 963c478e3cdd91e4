import { closeSync, createWriteStream, fchmodSync, fchownSync, futimesSync, lchownSync, lstatSync, lutimesSync, mkdirSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FsView } from '../context/fs-view.js';
import { KilnError } from '../errors/index.js';
import { hasProcFd, openDirChecked } from '../fs/stat-at.js';
import { followUserLink } from '../fs/user-path.js';
import { createFileAt, ensureDirAt, openDirAt, pathAt, removeAt } from '../fs/write-at.js';
import { platformDirName } from '../image/platform.js';
import type { LayerEntry } from '../layer/types.js';
import { isHostRoot } from '../rootless/session.js';
import type { Exporter } from './exporter.js';
import { entriesOf } from './fs-entries.js';

/**
 * `-o type=local,dest=DIR`: the final file system as a plain directory. Several
 * platforms get one sub-directory each (linux_amd64/, linux_arm64/), as buildx
 * lays them out.
 *
 * As BuildKit's local exporter (fsutil's receiver, in merge mode), DIR is not
 * emptied: the image's entries replace what has the same name, and everything
 * else there stays. What is there is never written through: an earlier export
 * of an image with `/x -> /etc`, or a symlink someone put in DIR, is replaced
 * by the image's directory or file, not followed. Every entry is made in its
 * directory held open as a descriptor (fs/write-at.ts), every file created new
 * (O_EXCL|O_NOFOLLOW), and modes, owners and times set on open descriptors.
 */
export const localExporter: Exporter<{ dest: string }> = {
  resolve: ({ dest }) => ({
    name: 'local',
    async export(src) {
      const parts = await src.filesystems();
      const out = openDestination(dest);
      try {
        if (parts.length === 1 && !parts[0]!.platform) await writeLocal(parts[0]!.fs, out, '');
        else for (const p of parts) await writeLocal(p.fs, out, p.platform ? platformDirName(p.platform) : '');
      } finally {
        out.close();
      }
    },
  }),
};

/** DIR, made when missing, opened without following a symlink. */
function openDestination(dest: string): Destination {
  if (!hasProcFd()) throw new KilnError('UNSUPPORTED', '-o type=local writes through /proc/self/fd, which is not mounted here');
  mkdirSync(path.dirname(dest), { recursive: true });
  try {
    mkdirSync(dest, 0o755);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  // DIR is the user's: a symlink they named is followed (one another user planted in /tmp is not);
  // nothing below it ever is
  const dir = followUserLink(dest, '-o type=local');
  const st = lstatSync(dir);
  if (st.isSymbolicLink()) throw new KilnError('UNSAFE_PATH', `-o type=local: the destination ${dest} is a symlink that leads nowhere`);
  if (!st.isDirectory()) throw new KilnError('USAGE', `-o type=local: the destination ${dest} is not a directory`);
  return new Destination(dir, openDirChecked(dir, st, false, () => new KilnError('UNSAFE_PATH', `-o type=local: the destination ${dest} was replaced while kiln opened it`)));
}

/**
 * DIR open as a descriptor, and the directories under it opened on the way to the last entry
 * written: entries come parent first, so the chain is mostly reused and each directory is opened
 * once, each component without following a symlink.
 */
class Destination {
  private readonly chain: Array<{ rel: string; fd: number }>;

  constructor(readonly dest: string, rootFd: number) {
    this.chain = [{ rel: '', fd: rootFd }];
  }

  /** How errors name `rel`: the host path the user would look at. */
  show(rel: string): string {
    return rel === '' ? this.dest : path.join(this.dest, rel);
  }

  /** The directory `rel` (relative to DIR, '' for DIR) as an O_PATH descriptor; it stays open until the chain moves elsewhere. */
  dir(rel: string): number {
    while (this.chain.length > 1 && !within(rel, this.chain[this.chain.length - 1]!.rel)) closeSync(this.chain.pop()!.fd);
    let top = this.chain[this.chain.length - 1]!;
    while (top.rel !== rel) {
      const name = (top.rel === '' ? rel : rel.slice(top.rel.length + 1)).split('/')[0]!;
      const child = top.rel === '' ? name : `${top.rel}/${name}`;
      top = { rel: child, fd: openDirAt(top.fd, name, this.show(child)) };
      this.chain.push(top);
    }
    return top.fd;
  }

  close(): void {
    for (const { fd } of this.chain.splice(0)) closeSync(fd);
  }
}

function within(rel: string, dir: string): boolean {
  return dir === '' || rel === dir || rel.startsWith(`${dir}/`);
}

function split(rel: string): { parent: string; name: string } {
  const slash = rel.lastIndexOf('/');
  return slash === -1 ? { parent: '', name: rel } : { parent: rel.slice(0, slash), name: rel.slice(slash + 1) };
}

/** The final file system as a plain directory under `out`'s `under` ('' for DIR itself; owners kept when running as root). */
async function writeLocal(fs: FsView, out: Destination, under: string): Promise<void> {
  // a platform's directory (linux_amd64/) is kiln's own, no image entry sets its mode: an ordinary 0755 one
  if (under !== '') ensureDirAt(out.dir(''), under, out.show(under), 0o755);
  const dirs: Array<[string, LayerEntry]> = [];
  // in rootless mode ids are the namespace's: the files stay the user's own on the host
  const root = isHostRoot();
  for (const e of entriesOf(fs)) {
    const rel = under === '' ? e.path : `${under}/${e.path}`;
    const { parent, name } = split(rel);
    const dirFd = out.dir(parent);
    const what = out.show(rel);
    if (e.type === 'directory') {
      // a directory already there is merged into; a symlink or file in its place is replaced
      ensureDirAt(dirFd, name, what);
      dirs.push([rel, e]);
    } else if (e.type === 'file') {
      const fd = createFileAt(dirFd, name, what);
      try {
        await pipeline(e.open!(), createWriteStream('', { fd, autoClose: false }));
        // owner first (chown clears setuid bits), then mode and times, all on the descriptor: no path to swap
        if (root) fchownSync(fd, e.uid, e.gid);
        fchmodSync(fd, e.mode);
        futimesSync(fd, e.mtime, e.mtime);
      } finally {
        closeSync(fd);
      }
    } else if (e.type === 'symlink') {
      removeAt(dirFd, name, what);
      const at = pathAt(dirFd, name);
      symlinkSync(e.linkname ?? '', at);
      // the l- calls act on the link itself, in the directory held open
      if (root) lchownSync(at, e.uid, e.gid);
      try {
        lutimesSync(at, e.mtime, e.mtime);
      } catch {
        // a file system without symlink times keeps the link's own
      }
    } else {
      // devices and fifos are not exported to a plain directory; the name is still the image's
      removeAt(dirFd, name, what);
    }
  }
  // directory metadata last, deepest first, so writing children does not disturb it
  for (const [rel, e] of dirs.reverse()) {
    const { parent, name } = split(rel);
    const fd = openDirAt(out.dir(parent), name, out.show(rel), true);
    try {
      if (root) fchownSync(fd, e.uid, e.gid);
      fchmodSync(fd, e.mode);
      futimesSync(fd, e.mtime, e.mtime);
    } finally {
      closeSync(fd);
    }
  }
}
