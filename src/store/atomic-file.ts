import { randomBytes } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { link, open, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** fsync a directory so a rename in it survives a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function tempName(tmpDir: string, prefix: string): string {
  return join(tmpDir, `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`);
}

async function writeSynced(path: string, bytes: Uint8Array): Promise<void> {
  const fh = await open(path, 'wx', 0o644);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Replaces `dest` with `bytes` atomically: temp file in `tmpDir` (same file system), fsync, rename, fsync dir. */
export async function writeFileAtomic(dest: string, bytes: Uint8Array, tmpDir: string): Promise<void> {
  const tmp = tempName(tmpDir, 'file');
  try {
    await writeSynced(tmp, bytes);
    await rename(tmp, dest);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(dirname(dest));
}

/** Creates `dest` with `bytes` only if it does not exist yet (link(2) fails on EEXIST); true when this call created it. */
export async function createFileAtomic(dest: string, bytes: Uint8Array, tmpDir: string): Promise<boolean> {
  // Every Store.open makes sure of its layout files: when they are there (always but the first time),
  // looking is enough, instead of writing and fsyncing a temp file for link(2) to refuse. A file that
  // is there is whole: it only ever appears through link(2) of a synced temp file.
  if (lstatSync(dest, { throwIfNoEntry: false }) !== undefined) return false;
  const tmp = tempName(tmpDir, 'file');
  try {
    await writeSynced(tmp, bytes);
    await link(tmp, dest);
    await fsyncDir(dirname(dest));
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
}
