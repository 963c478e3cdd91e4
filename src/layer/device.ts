import { errno, libc } from '../sys/libc.js';
import { KilnError } from '../errors/index.js';

/** mknod(2) for character/block devices, fifos and overlay whiteouts (char 0:0); Node has no binding. */
type MknodFn = (path: string, mode: number, dev: bigint) => number;
let mknodFn: MknodFn | undefined;

export const S_IFCHR = 0o020000;
export const S_IFBLK = 0o060000;
export const S_IFIFO = 0o010000;

/** glibc's makedev: 12 bits of major and 20 of minor, split across the 64-bit dev_t. */
export function makedev(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & ~0xfffn) << 32n) | (mi & 0xffn) | ((mi & ~0xffn) << 12n);
}

export function major(rdev: number): number {
  return Number(((BigInt(rdev) >> 8n) & 0xfffn) | ((BigInt(rdev) >> 32n) & ~0xfffn));
}

export function minor(rdev: number): number {
  return Number((BigInt(rdev) & 0xffn) | ((BigInt(rdev) >> 12n) & ~0xffn));
}

export function mknod(path: string, mode: number, devmajor = 0, devminor = 0): void {
  mknodFn ??= libc().func('int mknod(const char *path, uint32_t mode, uint64_t dev)') as MknodFn;
  if (mknodFn(path, mode, makedev(devmajor, devminor)) !== 0) {
    throw new KilnError('ARCHIVE', `mknod ${path} failed (errno ${errno()})`);
  }
}
