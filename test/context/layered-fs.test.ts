import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LayeredFs } from '../../src/context/layered-fs.js';
import { resolvePath, walk } from '../../src/context/fs-view.js';
import { setXattr } from '../../src/layer/xattr.js';
import { makeTree, tempDir } from '../steps/copy-helpers.js';

async function read(fs: LayeredFs, p: string): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of fs.open(p)) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

function whiteout(path: string): void {
  execFileSync('mknod', [path, 'c', '0', '0']);
}

describe('LayeredFs', () => {
  const bottom = makeTree(tempDir(), { 'etc/a': 'a0', 'etc/b': 'b0', 'var/lib/x': 'x', 'opaque/old': 'o', 'f': { dir: true }, 'f/inside': 'i', 'usr/bin/sh': 'sh', 'bin': { link: 'usr/bin' } });
  const middle = makeTree(tempDir(), { 'etc/a': 'a1', 'opaque/mid': 'm', 'f': 'now a file' });
  const top = makeTree(tempDir(), { 'etc/c': 'c2', 'opaque/new': 'n' });
  whiteout(join(top, 'etc/b'));
  whiteout(join(middle, 'var'));
  setXattr(join(top, 'opaque'), 'trusted.overlay.opaque', Buffer.from('y'));
  const fs = new LayeredFs([top, middle, bottom]);

  it('merges directories, the topmost copy winning', async () => {
    expect(fs.readdir('etc')).toEqual(['a', 'c']);
    expect(await read(fs, 'etc/a')).toBe('a1');
    expect(await read(fs, 'etc/c')).toBe('c2');
  });

  it('a 0:0 char device hides the name and everything below it', () => {
    expect(fs.lstat('etc/b')).toBeUndefined();
    expect(fs.lstat('var')).toBeUndefined();
    expect(fs.lstat('var/lib/x')).toBeUndefined();
    expect(fs.readdir('')).not.toContain('var');
  });

  it('an opaque directory hides lower contents', () => {
    expect(fs.readdir('opaque')).toEqual(['new']);
    expect(fs.lstat('opaque/old')).toBeUndefined();
    expect(fs.lstat('opaque/mid')).toBeUndefined();
  });

  it('a file in an upper layer hides a lower directory', () => {
    expect(fs.lstat('f')?.type).toBe('file');
    expect(fs.lstat('f/inside')).toBeUndefined();
  });

  it('resolves symlinks inside its own root and clamps ".." there', () => {
    expect(resolvePath(fs, 'bin/sh', { followFinal: true })).toBe('usr/bin/sh');
    expect(fs.readlink('bin')).toBe('usr/bin');
    expect(fs.stat('bin')?.type).toBe('directory');
    expect(fs.lstat('bin')?.type).toBe('symlink');
    expect(resolvePath(fs, '../../../etc/a', { followFinal: true })).toBe('etc/a');
    expect([...walk(fs, '')].map(([p]) => p)).toEqual(['bin', 'etc', 'etc/a', 'etc/c', 'f', 'opaque', 'opaque/new', 'usr', 'usr/bin', 'usr/bin/sh']);
  });
});
