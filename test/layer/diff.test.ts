import { execFileSync } from 'node:child_process';
import { linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { extractLayer } from '../../src/layer/extract.js';
import { mknod, S_IFCHR } from '../../src/layer/device.js';
import { diffUpperdir, entriesFromDirectory } from '../../src/layer/walk.js';
import { writeLayer } from '../../src/layer/write-layer.js';
import { getXattr, setXattr } from '../../src/layer/xattr.js';
import type { LayerEntry } from '../../src/layer/types.js';
import { DirBlobStore } from './dir-blob-store.js';
import { CAP_NET_BIND, sh, tempDir } from './helpers.js';

const tmp = tempDir();
const mounted: string[] = [];
afterAll(() => {
  for (const m of mounted) execFileSync('umount', [m]);
  tmp.cleanup();
});
const store = new DirBlobStore(join(tmp.path, 'store'));

async function list(it: AsyncIterable<LayerEntry>): Promise<LayerEntry[]> {
  const out: LayerEntry[] = [];
  for await (const e of it) out.push(e);
  return out;
}

const brief = (e: LayerEntry): string => `${e.path} ${e.type}${e.linkname ? ` -> ${e.linkname}` : ''}${e.type === 'char' ? ` ${e.devmajor}:${e.devminor}` : ''}`;

function mountOverlay(lower: string, upper: string, work: string, merged: string): void {
  mkdirSync(upper, { recursive: true });
  mkdirSync(work, { recursive: true });
  mkdirSync(merged, { recursive: true });
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off,index=off`, merged]);
  mounted.push(merged);
}

function umount(merged: string): void {
  execFileSync('umount', [merged]);
  mounted.splice(mounted.indexOf(merged), 1);
}

describe('diffUpperdir on a real overlay mount', () => {
  it('turns a RUN-style change set into OCI entries, and extraction gives overlay the same view back', async () => {
    const root = join(tmp.path, 'ov');
    const lower = join(root, 'lower');
    mkdirSync(join(lower, 'etc/conf.d'), { recursive: true });
    mkdirSync(join(lower, 'var/cache/apt'), { recursive: true });
    writeFileSync(join(lower, 'etc/removed'), 'x');
    writeFileSync(join(lower, 'etc/conf.d/old'), 'old');
    writeFileSync(join(lower, 'var/cache/apt/pkg'), 'pkg');
    writeFileSync(join(lower, 'keep'), 'keep');

    const merged = join(root, 'merged');
    mountOverlay(lower, join(root, 'upper'), join(root, 'work'), merged);
    // What a RUN might do:
    unlinkSync(join(merged, 'etc/removed')); // whiteout
    rmSync(join(merged, 'etc/conf.d'), { recursive: true }); // dir replaced: opaque
    mkdirSync(join(merged, 'etc/conf.d'));
    writeFileSync(join(merged, 'etc/conf.d/new'), 'new');
    writeFileSync(join(merged, 'ping'), 'binary');
    setXattr(join(merged, 'ping'), 'security.capability', CAP_NET_BIND);
    setXattr(join(merged, 'ping'), 'user.origin', Buffer.from([0xff, 0]));
    mkdirSync(join(merged, 'usr/bin'), { recursive: true });
    writeFileSync(join(merged, 'usr/bin/a'), 'same inode');
    linkSync(join(merged, 'usr/bin/a'), join(merged, 'usr/bin/b'));
    linkSync(join(merged, 'usr/bin/a'), join(merged, 'b-first'));
    symlinkSync('usr/bin/a', join(merged, 'alias'));
    execFileSync('mkfifo', [join(merged, 'usr/fifo')]);
    mkdirSync(join(merged, 'run/secrets'), { recursive: true });
    writeFileSync(join(merged, 'run/secrets/token'), 'never in a layer');
    umount(merged);

    const upper = join(root, 'upper');
    const entries = await list(diffUpperdir(upper, { exclude: ['/run/secrets'] }));
    expect(entries.map(brief)).toEqual([
      'alias symlink -> usr/bin/a',
      'b-first file',
      'etc directory',
      'etc/.wh.removed file',
      'etc/conf.d directory',
      'etc/conf.d/.wh..wh..opq file',
      'etc/conf.d/new file',
      'ping file',
      'run directory',
      'usr directory',
      'usr/bin directory',
      'usr/bin/a hardlink -> b-first',
      'usr/bin/b hardlink -> b-first',
      'usr/fifo fifo',
    ]);
    const ping = entries.find((e) => e.path === 'ping')!;
    expect(ping.xattrs).toEqual({ 'security.capability': CAP_NET_BIND, 'user.origin': Buffer.from([0xff, 0]) });
    const confd = entries.find((e) => e.path === 'etc/conf.d')!;
    expect(confd.xattrs).toBeUndefined(); // trusted.overlay.opaque is overlay's, not the image's
    expect(entries.find((e) => e.path === 'etc/.wh.removed')).toMatchObject({ size: 0, mode: 0o600 });

    const w = await writeLayer(diffUpperdir(upper, { exclude: ['run/secrets'] }), store);
    const listing = sh('tar', ['-tzf', store.blobPath(w.digest)]).toString();
    expect(listing).toContain('etc/.wh.removed\n');
    expect(listing).toContain('etc/conf.d/.wh..wh..opq\n');
    expect(listing).not.toContain('token');
    expect(readFileSync(store.blobPath(w.digest)).includes('never in a layer')).toBe(false);

    // Extract as a snapshot and stack it on the same lower dir: the merged view must match the RUN's.
    const snap = join(root, 'snapshot');
    await extractLayer(store.openBlob(w.digest), w.mediaType, snap);
    const view = join(root, 'view');
    mkdirSync(view);
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${snap}:${lower}`, view]);
    mounted.push(view);
    expect(existsSync(join(view, 'etc/removed'))).toBe(false);
    expect(readdirSync(join(view, 'etc/conf.d'))).toEqual(['new']);
    expect(readFileSync(join(view, 'var/cache/apt/pkg'), 'utf8')).toBe('pkg');
    expect(readFileSync(join(view, 'keep'), 'utf8')).toBe('keep');
    expect(getXattr(join(view, 'ping'), 'security.capability')).toEqual(CAP_NET_BIND);
    expect(lstatSync(join(view, 'usr/bin/b')).ino).toBe(lstatSync(join(view, 'b-first')).ino);
    umount(view);

    // And the snapshot diffs back to the same entries (the conversion is lossless both ways).
    const again = await list(diffUpperdir(snap));
    // Times aside: tar keeps whole seconds, and whiteout markers have no time of their own in overlay.
    const strip = (e: LayerEntry): unknown => ({ ...e, sourcePath: undefined, mtime: 0 });
    expect(again.map(strip)).toEqual(entries.map(strip));
    const file = (l: LayerEntry[]): number => l.find((e) => e.path === 'etc/conf.d/new')!.mtime;
    expect(file(again)).toBe(Math.floor(file(entries)));
  });
});

describe('entriesFromDirectory', () => {
  it('walks in layer order (a/x before a-b), keeps char devices as devices, clamps mtimes', async () => {
    const dir = join(tmp.path, 'plain');
    mkdirSync(join(dir, 'a'), { recursive: true });
    writeFileSync(join(dir, 'a/x'), 'x');
    writeFileSync(join(dir, 'a-b'), 'ab');
    writeFileSync(join(dir, 'B'), 'B');
    mknod(join(dir, 'wh'), S_IFCHR | 0o600, 0, 0);
    const entries = await list(entriesFromDirectory(dir, { sourceDateEpoch: 1000 }));
    expect(entries.map(brief)).toEqual(['B file', 'a directory', 'a/x file', 'a-b file', 'wh char 0:0']);
    expect(entries.every((e) => e.mtime === 1000)).toBe(true);
    const w = await writeLayer(entriesFromDirectory(dir), store, { sourceDateEpoch: 1000 });
    const w2 = await writeLayer(entriesFromDirectory(dir), store, { sourceDateEpoch: 1000 });
    expect(w2.digest).toBe(w.digest);
  });
});
