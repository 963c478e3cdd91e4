import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, openSync, rmSync, statSync, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { CREATE_NEW } from './write-at.js';

/** Temp files neither renamed into place nor removed yet: what `discardPendingFiles` removes. */
const pending = new Set<string>();

/**
 * A file written beside `dest` under a fresh random name (`.NAME.<hex>.tmp`) and renamed over
 * `dest` by `commit`. An interrupted write never leaves a truncated file under the requested name,
 * and whatever is at `dest` when it is committed, a symlink someone planted there included, is
 * replaced rather than written through: rename(2) does not follow its target. The directory
 * `dest` is in is the caller's (the user named the path); only its last component is guarded.
 */
export class ReplacingFile {
  /** Where the bytes go; closed by `commit` or `discard`. */
  readonly out: WriteStream;
  private readonly tmp: string;
  private failure: Error | undefined;

  constructor(readonly dest: string, mode = 0o666) {
    // renaming over /dev/stdout (a symlink, here replaced in /dev for everyone) or a pipe is never what was meant
    const st = statSync(dest, { throwIfNoEntry: false });
    if (st && !st.isFile() && !st.isDirectory()) throw new KilnError('USAGE', `${dest} is not a regular file (a device, pipe or socket): kiln writes a new file and renames it into place`, { hint: 'name a file, or - for standard output where the option takes it' });
    this.tmp = join(dirname(dest), `.${basename(dest)}.${randomBytes(4).toString('hex')}.tmp`);
    // a name someone made beforehand (a file, a symlink to a victim) fails the create: never reused or followed
    const fd = openSync(this.tmp, CREATE_NEW, mode);
    pending.add(this.tmp);
    this.out = createWriteStream('', { fd });
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
      await rename(this.tmp, this.dest);
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
    await rm(this.tmp, { force: true });
    pending.delete(this.tmp);
  }
}

export interface ReplaceFileOptions {
  /** Permission bits of the new file (before the umask); default 0666, as writeFile's. */
  mode?: number;
  /** The byte count a stream `data` must have: any other fails the write and leaves `dest` as it was. */
  size?: number;
}

/** Replaces `dest` with `data` as a `ReplacingFile` does: never a partial file, never a write through a symlink. */
export async function replaceFile(dest: string, data: string | Uint8Array | Readable, opts: ReplaceFileOptions = {}): Promise<void> {
  const f = new ReplacingFile(dest, opts.mode);
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
