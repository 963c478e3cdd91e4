import { execFileSync } from 'node:child_process';
import { closeSync, constants, linkSync, lstatSync, mkdirSync, openSync, readlinkSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makedev, readlinkAt, statAt, statViaProcFd } from '../../src/fs/stat-at.js';
import { tempDir } from '../layer/helpers.js';

/**
 * statAt reads struct statx itself (through koffi). Every field it gives must be exactly what Node's
 * lstat gives for the same entry: the hash cache compares them with records written from Node's
 * stats, and the layer writer compares device and inode with its own fstat.
 */
const FIELDS = ['mode', 'uid', 'gid', 'size', 'dev', 'ino', 'nlink', 'rdev', 'mtimeMs', 'ctimeMs'] as const;

let t: { path: string; cleanup: () => void };
let fd: number;
beforeEach(() => {
  t = tempDir('kiln-statat-');
  const d = t.path;
  writeFileSync(join(d, 'file'), 'x'.repeat(1234), { mode: 0o640 });
  linkSync(join(d, 'file'), join(d, 'hardlink'));
  mkdirSync(join(d, 'dir'), { mode: 0o751 });
  symlinkSync('../somewhere/else', join(d, 'link'));
  execFileSync('mkfifo', [join(d, 'fifo')]);
  writeFileSync(join(d, 'old'), '');
  // a fractional time before 1970: a negative seconds field with nanoseconds
  utimesSync(join(d, 'old'), -86_400.25, -86_400.25);
  writeFileSync(join(d, 'frac'), '');
  utimesSync(join(d, 'frac'), 1_700_000_000.123456, 1_700_000_000.987654);
  fd = openSync(d, constants.O_RDONLY | constants.O_DIRECTORY);
});
afterEach(() => {
  closeSync(fd);
  t.cleanup();
});

function expectSameAsLstat(dirFd: number, dir: string, name: string, read: typeof statAt): void {
  const mine = read(dirFd, name);
  const node = lstatSync(join(dir, name));
  expect(mine, name).toBeDefined();
  for (const f of FIELDS) expect(mine![f], `${name}.${f}`).toBe(node[f]);
}

describe('statAt', () => {
  it('gives the fields of Node lstat for a file, hard link, directory, symlink (not followed), FIFO and times before 1970 or with fractions', () => {
    for (const name of ['file', 'hardlink', 'dir', 'link', 'fifo', 'old', 'frac', '.', '..']) expectSameAsLstat(fd, t.path, name, statAt);
    expect(statAt(fd, 'hardlink')!.nlink).toBe(2);
    expect(statAt(fd, 'link')!.mode & 0o170000).toBe(0o120000);
  });

  it('gives device numbers (st_rdev) and the device of another file system as Node does', () => {
    const dev = openSync('/dev', constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      for (const name of ['null', 'zero', 'tty']) expectSameAsLstat(dev, '/dev', name, statAt);
      expect(statAt(dev, 'null')!.rdev).not.toBe(0);
    } finally {
      closeSync(dev);
    }
  });

  it('is undefined for a missing entry or one below a file', () => {
    expect(statAt(fd, 'nope')).toBeUndefined();
    expect(statAt(fd, 'file/below')).toBeUndefined();
  });

  it('looks the name up in the open directory, not at its path: a directory renamed after it was opened still answers', () => {
    const sub = join(t.path, 'dir');
    writeFileSync(join(sub, 'inner'), 'abc');
    const subFd = openSync(sub, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      execFileSync('mv', [sub, join(t.path, 'moved')]);
      symlinkSync(t.path, sub);
      expect(statAt(subFd, 'inner')?.size).toBe(3);
      expect(statAt(subFd, 'file')).toBeUndefined(); // the symlink's target holds "file"; the opened directory does not
      expect(statViaProcFd(subFd, 'inner')?.size).toBe(3);
      expect(statViaProcFd(subFd, 'file')).toBeUndefined();
    } finally {
      closeSync(subFd);
    }
  });

  it('its fallback through /proc/self/fd (used where statx(2) is refused) gives the same fields', () => {
    for (const name of ['file', 'hardlink', 'dir', 'link', 'fifo', 'old', 'frac']) expectSameAsLstat(fd, t.path, name, statViaProcFd);
    expect(statViaProcFd(fd, 'nope')).toBeUndefined();
  });
});

describe('readlinkAt', () => {
  it('reads a target as readlink does: relative, non-ASCII, and as long as Linux allows', () => {
    symlinkSync('dír/ünïcode-😀', join(t.path, 'u'));
    symlinkSync('x/'.repeat(2047) + 'y', join(t.path, 'long'));
    for (const name of ['link', 'u', 'long']) expect(readlinkAt(fd, name), name).toBe(readlinkSync(join(t.path, name)));
    expect(readlinkAt(fd, 'long')).toHaveLength(4095);
  });

  it('fails with one line naming the entry and the cause on what is not a symlink', () => {
    expect(() => readlinkAt(fd, 'file', '"ctx/file" in the build context')).toThrow('cannot read the symlink "ctx/file" in the build context: EINVAL (invalid argument)');
  });
});

describe('makedev', () => {
  it('packs major and minor as glibc does (low 12 bits of the major at bit 8, the rest at bit 44; the upper bits of the minor at bit 20)', () => {
    expect(makedev(8, 1)).toBe(0x801);
    expect(makedev(259, 3)).toBe(0x10303);
    expect(makedev(0, 0x100)).toBe(0x100000);
    expect(makedev(1, 0x12345)).toBe(0x12300145);
    expect(makedev(0x1000, 0)).toBe(2 ** 44);
    expect(makedev(0x1001, 7)).toBe(2 ** 44 + 0x107);
  });
});
