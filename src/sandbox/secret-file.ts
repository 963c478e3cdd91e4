import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { KilnError } from '../errors/index.js';

/** BuildKit's limit for one secret (its secrets provider refuses a bigger one). */
export const MAX_SECRET_BYTES = 500 * 1024;

/**
 * The bytes of a `--secret src=FILE`: a regular file of at most MAX_SECRET_BYTES. Opened without
 * blocking, so a FIFO (one another user planted in /tmp, say) is refused at once instead of holding
 * the build in an open(2) no signal can end, and read no further than the limit, so `/dev/zero`
 * cannot fill memory (it did, to 24 GB, before 2026-12-07). A link is followed: the path is the
 * user's own choice on the command line.
 */
export async function readSecretFile(path: string, id: string): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw new KilnError('USAGE', `secret ${id}: cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new KilnError('USAGE', `secret ${id}: ${path} is not a regular file`);
    if (st.size > MAX_SECRET_BYTES) throw tooBig(id, path);
    const buf = Buffer.alloc(MAX_SECRET_BYTES + 1);
    let n = 0;
    for (let got; n < buf.length && (got = (await fh.read(buf, n, buf.length - n, n)).bytesRead) > 0; ) n += got;
    if (n > MAX_SECRET_BYTES) throw tooBig(id, path);
    return buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

/** Whether `e` is readSecretFile's error for a file that does not exist (a secret not given, where a secret may be absent). */
export function isMissingSecret(e: unknown): boolean {
  return e instanceof KilnError && (e.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function tooBig(id: string, path: string): KilnError {
  return new KilnError('USAGE', `secret ${id}: ${path} is larger than ${MAX_SECRET_BYTES} bytes, the most a secret may hold (as in BuildKit)`);
}
