import { fstatSync, readFileSync, rmSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { STORE_FILE_MODE } from './store-dirs.js';

/**
 * "This file is the one kiln hashed": a blob written through the store is
 * hashed as it is written, so re-hashing it on every later read (an OCI or
 * docker archive of a 500 MB layer re-hashes 500 MB) only guards against the
 * file having changed since. A record of the file's size, inode and ctime,
 * taken right after it was published, answers that for a stat: any write,
 * truncation, chmod, rename over or replacement changes the ctime or the
 * inode, and user space cannot set a ctime back. What it does not catch is
 * damage below the file system (bit rot, a disk written behind its back):
 * `kiln fsck` therefore always re-hashes, and a missing or unreadable record
 * only means the blob is hashed again.
 *
 * Small blobs are not recorded: hashing them costs less than reading a record.
 */
export const VERIFIED_RECORD_MIN_SIZE = 1024 * 1024;

function identity(st: BigIntStats): string {
  return `${st.size} ${st.ino} ${st.ctimeNs}`;
}

/** After `blobFile` was published with the content it was hashed as: remember that exact file. */
export function writeVerifiedRecord(recordFile: string, blobFile: string): void {
  const st = statSync(blobFile, { bigint: true });
  if (st.size < BigInt(VERIFIED_RECORD_MIN_SIZE)) return;
  try {
    // not synced: a record lost in a crash only means one more hash
    writeFileSync(recordFile, identity(st), { mode: STORE_FILE_MODE });
  } catch {
    // without a record the blob is hashed when read
  }
}

/** True when the open blob `fd` is still the file that was recorded (same size, inode and ctime). */
export function matchesVerifiedRecord(recordFile: string, fd: number): boolean {
  let recorded: string;
  try {
    recorded = readFileSync(recordFile, 'utf8');
  } catch {
    return false;
  }
  return recorded === identity(fstatSync(fd, { bigint: true }));
}

export function removeVerifiedRecord(recordFile: string): void {
  rmSync(recordFile, { force: true });
}
