import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, constants, createWriteStream, fchmodSync, fstatSync, lstatSync, openSync, rmSync, statSync, type Stats, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { followUserLink, plantedByAnother } from './user-path.js';
import { CREATE_NEW } from './write-at.js';

/** Temp files neither renamed into place nor removed yet: what `discardPendingFiles` removes. */
const pending = new Set<string>();

/**
 * A file written beside `dest` under a fresh random name (`.NAME.<hex>.tmp`) and renamed over
 * `dest` by `commit`. An interrupted write never leaves a truncated file under the requested name.
 *
 * `dest` is a path the user named (`--iidfile`, `-o`): a symlink at it is followed as the kernel's
 * protected_symlinks rule allows (fs/user-path.ts; one planted by another user in /tmp is refused),
 * an existing file keeps its mode, and a device or pipe the user named (`/dev/stdout`) is written
 * to directly, since renaming over it would replace it for everyone. With `replaceEntry`, `dest` is a
 * name inside a directory kiln fills (`-o type=local`'s attestation files beside the image's own,
 * a `--cache-to type=local` layout): whatever is there, a symlink or a device node an image put
 * there included, is replaced by the rename, never followed or opened.
 */
export class ReplacingFile {
  /** Where the bytes go; closed by `commit` or `discard`. */
  readonly out: WriteStream;
  /** The temp file renamed into place; undefined when writing straight into a device or pipe. */
  private readonly tmp: string | undefined;
  private readonly target: string;
  private failure: Error | undefined;

  constructor(readonly dest: string, mode = 0o666, opts: { replaceEntry?: boolean; what?: string } = {}) {
    const what = opts.what ?? dest;
    this.target = opts.replaceEntry ? dest : followUserLink(dest, what);
    // what is at the target itself (lstat): the decision below never rests on a later lookup that
    // follows a link, which another user could swap in meanwhile (a file in /tmp for a link to /dev/kmsg)
    const own = opts.replaceEntry ? undefined : lstatSync(this.target, { throwIfNoEntry: false });
    // a link still there is one followUserLink let through that does not resolve as a path (/dev/stdout → a pipe)
    const st = own?.isSymbolicLink() ? statSync(this.target, { throwIfNoEntry: false }) : own;
    if (st && (st.isCharacterDevice() || st.isFIFO())) {
      if (own && !own.isSymbolicLink()) refuseForeignNode(this.target, own, what);
      this.tmp = undefined;
      this.out = createWriteStream('', { fd: openChecked(this.target, st, own?.isSymbolicLink() === true, what) });
    } else {
      if (st?.isSocket() || st?.isBlockDevice()) throw new KilnError('USAGE', `${dest} is a ${st.isSocket() ? 'socket' : 'block device'}: kiln writes files, a character device or a pipe`);
      this.tmp = join(dirname(this.target), `.${basename(this.target)}.${randomBytes(4).toString('hex')}.tmp`);
      // a file of the user's replaced keeps its permissions (a 0600 file stays 0600), as a write into it would;
      // another user's file (planted in /tmp, say) lends none, nor setuid bits: its modes would be theirs to choose
      const euid = process.geteuid?.() ?? 0;
      const kept = st?.isFile() && st.uid === euid ? st.mode & 0o777 : undefined;
      // a name someone made beforehand (a file, a symlink to a victim) fails the create: never reused or followed;
      // created with the final mode (less what the umask takes), so it is never more open than that meanwhile
      const fd = openSync(this.tmp, CREATE_NEW, kept ?? mode);
      if (kept !== undefined) fchmodSync(fd, kept);
      pending.add(this.tmp);
      this.out = createWriteStream('', { fd });
    }
    // surfaced by commit() (or the writer's next look at `error`); avoids an unhandled error meanwhile
    this.out.on('error', (e) => (this.failure ??= e));
  }

  /** The first write error, if any. */
  get error(): Error | undefined {
    return this.failure;
  }

  private async closed(): Promise<void> {
    if (!this.out.closed) await once(this.out, 'close').catch(() => undefined);
  }

  /** Ends the file and renames it over `dest`; on any failure the temp file is removed. */
  async commit(): Promise<void> {
    try {
      if (!this.out.writableEnded) this.out.end();
      await this.closed();
      if (this.failure) throw this.failure;
      if (this.tmp === undefined) return;
      await rename(this.tmp, this.target);
      pending.delete(this.tmp);
    } catch (e) {
      await this.discard();
      throw e;
    }
  }

  /** Closes and removes the temp file; `dest` is left as it was. */
  async discard(): Promise<void> {
    this.out.destroy();
    await this.closed();
    if (this.tmp === undefined) return;
    await rm(this.tmp, { force: true });
    pending.delete(this.tmp);
  }
}

/**
 * A FIFO or character device at an output path that another user may have made (plantedByAnother:
 * the protected_fifos rule) is refused: a FIFO they read would hand them the whole output (a root
 * file system's tar).
 */
function refuseForeignNode(path: string, st: Stats, what: string): void {
  if (plantedByAnother(path, st.uid)) {
    throw new KilnError('UNSAFE_PATH', `${what}: ${path} is a ${st.isFIFO() ? 'pipe' : 'device'} another user (uid ${st.uid}) made in a shared directory; kiln does not write to it`, { hint: 'write somewhere else' });
  }
}

/**
 * Opens the device or pipe `path` for writing and checks that it is the very node looked at
 * (device and inode): one swapped in between is refused. O_NOFOLLOW unless the name itself is the
 * link the user gave (/dev/stdout).
 */
function openChecked(path: string, st: Stats, follow: boolean, what: string): number {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_NOCTTY | (follow ? 0 : constants.O_NOFOLLOW));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new KilnError('UNSAFE_PATH', `${what}: ${path} was replaced by a symlink while kiln opened it`);
    throw e;
  }
  const now = fstatSync(fd);
  if (now.dev !== st.dev || now.ino !== st.ino) {
    closeSync(fd);
    throw new KilnError('UNSAFE_PATH', `${what}: ${path} was replaced while kiln opened it`);
  }
  return fd;
}

export interface ReplaceFileOptions {
  /** Permission bits of the new file (before the umask); default 0666, as writeFile's. */
  mode?: number;
  /** The byte count a stream `data` must have: any other fails the write and leaves `dest` as it was. */
  size?: number;
  /** `dest` is a name inside a directory kiln fills: whatever is there is replaced, never followed. */
  replaceEntry?: boolean;
  /** The option `dest` came from, for errors (`--iidfile`). */
  what?: string;
}

/** Replaces `dest` with `data` as a `ReplacingFile` does: never a partial file, never a write through a symlink. */
export async function replaceFile(dest: string, data: string | Uint8Array | Readable, opts: ReplaceFileOptions = {}): Promise<void> {
  const f = new ReplacingFile(dest, opts.mode, { ...(opts.replaceEntry ? { replaceEntry: true } : {}), ...(opts.what ? { what: opts.what } : {}) });
  try {
    if (typeof data === 'string' || data instanceof Uint8Array) {
      f.out.write(data);
    } else {
      // pipeline settles once every byte is written: the count is final here
      await pipeline(data, f.out);
      if (opts.size !== undefined && f.out.bytesWritten !== opts.size) throw new KilnError('ARCHIVE', `${dest}: wrote ${f.out.bytesWritten} bytes, expected ${opts.size}`);
    }
  } catch (e) {
    await f.discard();
    throw e;
  }
  await f.commit();
}

/**
 * Removes every temp file not yet committed or discarded, synchronously: for a signal handler
 * that is about to end the process, which gives pending writes no chance to unwind. A kill -9
 * still leaves `.NAME.<hex>.tmp` beside the output.
 */
export function discardPendingFiles(): void {
  for (const tmp of pending) rmSync(tmp, { force: true });
  pending.clear();
}
