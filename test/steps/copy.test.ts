import { chmodSync, chownSync, linkSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BuildContext } from '../../src/context/build-context.js';
import { LayeredFs } from '../../src/context/layered-fs.js';
import { planCopy, type CopyParams } from '../../src/steps/copy.js';
import { collect, failure, makeTree, plannedBothWays, tempDir, type Spec } from './copy-helpers.js';

function ctx(spec: Spec, opts?: { ignore?: string }): BuildContext {
  const dir = makeTree(tempDir(), spec);
  if (opts?.ignore !== undefined) writeFileSync(join(dir, '.dockerignore'), opts.ignore);
  return BuildContext.open(dir);
}

// every copy here is planned twice, and both ways of handing the entries to the layer writer agree
async function copy(p: Partial<CopyParams> & Pick<CopyParams, 'from' | 'sources' | 'dest'>) {
  const entries = await plannedBothWays(() => planCopy({ workdir: '/', now: 1000, ...p }));
  const r = await planCopy({ workdir: '/', now: 1000, ...p });
  return { ...r, seen: await collect(entries) };
}

/** A base image: one snapshot directory with passwd, group, /tmp 1777 and /srv owned by 33. */
function baseImage(): { dir: string; fs: LayeredFs } {
  const dir = makeTree(tempDir('kiln-base-'), {
    'etc/passwd': 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/bin/false\napp:x:1000:1001::/home/app:/bin/sh\n',
    'etc/group': 'root:x:0:\nwww-data:x:33:\nappgrp:x:1001:\nstaff:x:50:\n',
    tmp: { dir: true },
    'srv/www': { dir: true },
    'data/file': 'not a dir',
    'opt/real': { dir: true },
    'opt/link': { link: '/opt/real' },
  });
  chmodSync(join(dir, 'tmp'), 0o1777);
  chownSync(join(dir, 'srv'), 33, 33);
  chmodSync(join(dir, 'srv'), 0o750);
  utimesSync(join(dir, 'srv'), 500, 500);
  return { dir, fs: new LayeredFs([dir]) };
}

describe('COPY basics', () => {
  it('copies the contents of a directory source, not the directory itself', async () => {
    const from = ctx({ 'src/a.txt': 'A', 'src/sub/b.txt': 'B' });
    const { seen } = await copy({ from, sources: ['src'], dest: '/app' });
    expect(Object.keys(seen)).toEqual(['app', 'app/a.txt', 'app/sub', 'app/sub/b.txt']);
    expect(seen['app/a.txt']!.content).toBe('A');
    expect(seen['app']).toMatchObject({ type: 'directory', mode: '755', uid: 0, gid: 0 });
  });

  it('resolves the destination relative to WORKDIR, and "." is WORKDIR itself', async () => {
    const from = ctx({ 'a.txt': 'A' });
    expect(Object.keys((await copy({ from, sources: ['a.txt'], dest: 'x/b.txt', workdir: '/w' })).seen)).toEqual(['w', 'w/x', 'w/x/b.txt']);
    expect(Object.keys((await copy({ from, sources: ['a.txt'], dest: '.', workdir: '/w' })).seen)).toEqual(['w', 'w/a.txt']);
    expect(Object.keys((await copy({ from, sources: ['a.txt'], dest: '../up/', workdir: '/w/v' })).seen)).toEqual(['w', 'w/up', 'w/up/a.txt']);
    expect(Object.keys((await copy({ from, sources: ['a.txt'], dest: '/abs/', workdir: '/w' })).seen)).toEqual(['abs', 'abs/a.txt']);
  });

  it('a file to a destination without "/" is renamed; with "/" it goes inside', async () => {
    const from = ctx({ 'a.txt': 'A' });
    expect(Object.keys((await copy({ from, sources: ['a.txt'], dest: '/b' })).seen)).toEqual(['b']);
    expect(Object.keys((await copy({ from, sources: ['a.txt'], dest: '/b/' })).seen)).toEqual(['b', 'b/a.txt']);
  });

  it('several sources need a destination ending in "/"', async () => {
    const from = ctx({ 'a.txt': 'A', 'b.txt': 'B' });
    const f = await failure(copy({ from, sources: ['a.txt', 'b.txt'], dest: '/d' }));
    expect(f.message).toMatch(/more than one source file, the destination must be a directory and end with a \//);
    expect(Object.keys((await copy({ from, sources: ['a.txt', 'b.txt'], dest: '/d/' })).seen)).toEqual(['d', 'd/a.txt', 'd/b.txt']);
  });

  it('names a missing source', async () => {
    const from = ctx({ 'a.txt': 'A' });
    const f = await failure(copy({ from, sources: ['nope.txt'], dest: '/' }));
    expect(f).toEqual({ code: 'CONTEXT', message: 'COPY failed: "nope.txt" not found in build context' });
  });

  it('preserves mtimes and modes from the source', async () => {
    const from = ctx({ 'x.sh': { content: '#!/bin/sh', mode: 0o750, mtime: 1234567890 } });
    const { seen } = await copy({ from, sources: ['x.sh'], dest: '/bin/' });
    expect(seen['bin/x.sh']).toMatchObject({ mode: '750', mtime: 1234567890 });
  });

  it('writes root-owned files whatever the owner on the build machine', async () => {
    const dir = makeTree(tempDir(), { 'a.txt': 'A' });
    chownSync(join(dir, 'a.txt'), 4242, 4343);
    const { seen } = await copy({ from: BuildContext.open(dir), sources: ['a.txt'], dest: '/' });
    expect(seen['a.txt']).toMatchObject({ uid: 0, gid: 0 });
  });
});

describe('wildcards', () => {
  const from = ctx({ 'a.txt': 'A', 'b.txt': 'B', 'c.md': 'C', 'file1.txt': '1', 'file10.txt': '10', 'star*.txt': 'S', 'dir1/x': 'X', 'dir2/y': 'Y' });

  it('expands * with Go filepath.Match semantics', async () => {
    const { seen } = await copy({ from, sources: ['*.txt'], dest: '/o/' });
    expect(Object.keys(seen).sort()).toEqual(['o', 'o/a.txt', 'o/b.txt', 'o/file1.txt', 'o/file10.txt', 'o/star*.txt']);
  });

  it('supports ?, [...] classes, ranges and escapes', async () => {
    expect(Object.keys((await copy({ from, sources: ['file?.txt'], dest: '/o/' })).seen)).toEqual(['o', 'o/file1.txt']);
    expect(Object.keys((await copy({ from, sources: ['[ab].txt'], dest: '/o/' })).seen)).toEqual(['o', 'o/a.txt', 'o/b.txt']);
    expect(Object.keys((await copy({ from, sources: ['[^a-b].*'], dest: '/o/' })).seen)).toEqual(['o', 'o/c.md']);
    expect(Object.keys((await copy({ from, sources: ['star\\*.txt'], dest: '/o/' })).seen)).toEqual(['o', 'o/star*.txt']);
  });

  it('copies the contents of each matched directory', async () => {
    const { seen } = await copy({ from, sources: ['dir*'], dest: '/o/' });
    expect(Object.keys(seen)).toEqual(['o', 'o/x', 'o/y']);
  });

  it('treats several matches as a directory destination; a wildcard matching nothing copies nothing, a missing name fails', async () => {
    expect(Object.keys((await copy({ from, sources: ['[ab].txt'], dest: '/o' })).seen)).toEqual(['o', 'o/a.txt', 'o/b.txt']);
    // BuildKit's AllowEmptyWildcard: no entry at all, not even the destination
    expect(Object.keys((await copy({ from, sources: ['*.none'], dest: '/o/' })).seen)).toEqual([]);
    expect(Object.keys((await copy({ from, sources: ['a.txt', '*.none'], dest: '/o/' })).seen)).toEqual(['o', 'o/a.txt']);
    const f = await failure(copy({ from, sources: ['none.txt'], dest: '/o/' }));
    expect(f.code).toBe('CONTEXT');
    expect(f.message).toContain('"none.txt"');
  });
});

describe('--chown and --chmod', () => {
  const from = ctx({ 'a.txt': 'A', 'd/b.sh': { content: 'B', mode: 0o644 } });

  it('uid:gid and a bare uid (gid = uid)', async () => {
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chown: '10:20' })).seen['a.txt']).toMatchObject({ uid: 10, gid: 20 });
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chown: '7' })).seen['a.txt']).toMatchObject({ uid: 7, gid: 7 });
  });

  it('resolves names from the image /etc/passwd and /etc/group', async () => {
    const { fs } = baseImage();
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chown: 'app', destFs: fs })).seen['a.txt']).toMatchObject({ uid: 1000, gid: 1001 });
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chown: 'www-data:staff', destFs: fs })).seen['a.txt']).toMatchObject({ uid: 33, gid: 50 });
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chown: '5:appgrp', destFs: fs })).seen['a.txt']).toMatchObject({ uid: 5, gid: 1001 });
  });

  it('chown applies to copied directories and the destination it creates, not to existing parents', async () => {
    const { fs } = baseImage();
    const { seen } = await copy({ from, sources: ['d'], dest: '/srv/new/', chown: 'app', destFs: fs });
    expect(seen['srv']).toMatchObject({ uid: 33, gid: 33, mode: '750' });
    expect(seen['srv/new']).toMatchObject({ uid: 1000, gid: 1001, mode: '755' });
    expect(seen['srv/new/b.sh']).toMatchObject({ uid: 1000, gid: 1001 });
  });

  it('names as BuildKit resolves them: root without a lookup, an unknown user is 0, an unknown group keeps the user part\'s', async () => {
    const { fs } = baseImage();
    const owner = async (chown: string, destFs?: typeof fs) => (await copy({ from, sources: ['a.txt'], dest: '/', chown, ...(destFs ? { destFs } : {}) })).seen['a.txt'];
    // FROM scratch: no passwd at all
    expect(await owner('root:root')).toMatchObject({ uid: 0, gid: 0 });
    expect(await owner('app')).toMatchObject({ uid: 0, gid: 0 });
    expect(await owner('ghost', fs)).toMatchObject({ uid: 0, gid: 0 });
    expect(await owner('ghost:staff', fs)).toMatchObject({ uid: 0, gid: 50 });
    expect(await owner('app:nogroup', fs)).toMatchObject({ uid: 1000, gid: 1001 });
    expect(await owner(':staff', fs)).toMatchObject({ uid: 0, gid: 50 });
    expect(await owner(':1234', fs)).toMatchObject({ uid: 0, gid: 1234 });
    // past a signed 32-bit id it is a name, which no image has
    expect(await owner('3000000000', fs)).toMatchObject({ uid: 0, gid: 0 });
  });

  it('octal and symbolic --chmod', async () => {
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chmod: '0755' })).seen['a.txt']!.mode).toBe('755');
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chmod: '600' })).seen['a.txt']!.mode).toBe('600');
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chmod: 'u+x,g-r' })).seen['a.txt']!.mode).toBe('704');
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chmod: '+x' })).seen['a.txt']!.mode).toBe('755');
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chmod: 'a=rX' })).seen['a.txt']!.mode).toBe('444');
    const dirs = (await copy({ from, sources: ['.'], dest: '/o/', chmod: 'go=rX' })).seen;
    expect(dirs['o/d']!.mode).toBe('755');
    expect(dirs['o/d/b.sh']!.mode).toBe('644');
    await expect(copy({ from, sources: ['a.txt'], dest: '/', chmod: 'bogus' })).rejects.toThrow(/--chmod/);
    // as BuildKit: any run of octal digits up to 07777, and X asks about the mode before every clause
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chmod: '00755' })).seen['a.txt']!.mode).toBe('755');
    await expect(copy({ from, sources: ['a.txt'], dest: '/', chmod: '17777' })).rejects.toThrow(/between 0 and 07777/);
    expect((await copy({ from, sources: ['a.txt'], dest: '/', chmod: 'u+x,g+X' })).seen['a.txt']!.mode).toBe('744');
  });
});

describe('symlinks and safety', () => {
  it('copies symlinks inside directories as symlinks and follows a symlink source', async () => {
    const from = ctx({ 'real.txt': 'R', 'd/l': { link: '../real.txt' }, 'top': { link: 'real.txt' }, 'd/abs': { link: '/etc/passwd' } });
    const { seen } = await copy({ from, sources: ['d'], dest: '/o' });
    expect(seen['o/l']).toMatchObject({ type: 'symlink', linkname: '../real.txt' });
    expect(seen['o/abs']).toMatchObject({ type: 'symlink', linkname: '/etc/passwd' });
    const top = (await copy({ from, sources: ['top'], dest: '/o/' })).seen;
    expect(top['o/top']).toMatchObject({ type: 'file', content: 'R' });
  });

  it('refuses sources that resolve outside the context', async () => {
    const outside = makeTree(tempDir(), { 'secret.txt': 'S' });
    const from = ctx({ 'out': { link: join(outside, 'secret.txt') }, 'up': { link: '../../../../../../etc' }, 'a.txt': 'A' });
    for (const src of ['out', 'up/passwd', '../a.txt', 'x/../../a.txt']) {
      const f = await failure(copy({ from, sources: [src], dest: '/' }));
      expect(f.code).toBe('UNSAFE_PATH');
      expect(f.message).toContain(`"${src}"`);
    }
  });

  it('an absolute source means the context root, never the host', async () => {
    const from = ctx({ 'etc/passwd': 'context copy' });
    expect((await copy({ from, sources: ['/etc/passwd'], dest: '/p' })).seen['p']!.content).toBe('context copy');
  });

  it('does not follow a symlinked directory of the context to reach host files', async () => {
    const outside = makeTree(tempDir(), { 'secret.txt': 'S' });
    const from = ctx({ 'link': { link: outside } });
    const f = await failure(copy({ from, sources: ['link/secret.txt'], dest: '/' }));
    expect(f.code).toBe('UNSAFE_PATH');
  });
});

describe('.dockerignore, --exclude and --parents', () => {
  it('ignored files are absent from the context', async () => {
    const from = ctx({ 'a.txt': 'A', 'b.log': 'B', 'logs/keep.log': 'K', 'logs/x.log': 'X' }, { ignore: '*.log\nlogs\n!logs/keep.log\n' });
    const { seen } = await copy({ from, sources: ['.'], dest: '/o' });
    expect(Object.keys(seen)).toEqual(['.dockerignore', 'a.txt', 'logs', 'logs/keep.log'].map((p) => `o/${p}`).reduce((a, p) => [...a, p], ['o']));
    const f = await failure(copy({ from, sources: ['b.log'], dest: '/' }));
    expect(f.message).toBe('COPY failed: "b.log" not found in build context');
  });

  it('--exclude drops matching entries relative to the source', async () => {
    const from = ctx({ 'a.txt': 'A', 'b.md': 'B', 'sub/c.txt': 'C', 'sub/d.md': 'D' });
    const { seen } = await copy({ from, sources: ['.'], dest: '/o', exclude: ['*.md', 'sub/*.txt'] });
    expect(Object.keys(seen)).toEqual(['o', 'o/a.txt', 'o/sub', 'o/sub/d.md']);
    const w = await copy({ from, sources: ['*.txt', '*.md'], dest: '/w/', exclude: ['b.md'] });
    expect(Object.keys(w.seen)).toEqual(['w', 'w/a.txt']);
  });

  it('--parents keeps the source path, and /./ pivots it', async () => {
    const from = ctx({ 'x/y/f.txt': 'F', 'x/z/g.txt': 'G', 'a/b/c/h.txt': 'H' });
    const { seen } = await copy({ from, sources: ['x/*/*.txt'], dest: '/d/', parents: true });
    expect(Object.keys(seen)).toEqual(['d', 'd/x', 'd/x/y', 'd/x/y/f.txt', 'd/x/z', 'd/x/z/g.txt']);
    const piv = await copy({ from, sources: ['a/./b/c/h.txt'], dest: '/d/', parents: true });
    expect(Object.keys(piv.seen)).toEqual(['d', 'd/b', 'd/b/c', 'd/b/c/h.txt']);
    const dir = await copy({ from, sources: ['a/b'], dest: '/d/', parents: true });
    expect(Object.keys(dir.seen)).toEqual(['d', 'd/a', 'd/a/b', 'd/a/b/c', 'd/a/b/c/h.txt']);
  });
});

describe('destination file system', () => {
  it('a copy of one directory is walked as the layer is written, with the entries a planned copy has', async () => {
    const { fs } = baseImage();
    const from = ctx({
      'src/a.txt': 'A', 'src/srv/www/i.html': 'I', 'src/tmp/t': 'T', 'src/z/deep/er/f': 'F', 'src/z/skip.md': 'S', 'src/k/keep.md': 'K',
      'src/l': { link: 'a.txt' }, 'src/e': { dir: true },
    });
    linkSync(join(from.root, 'src/a.txt'), join(from.root, 'src/z/hard.txt'));
    const variants: Array<Partial<CopyParams>> = [
      { dest: '/' },
      { dest: '/srv/new/deeper', chown: 'app', chmod: '640' },
      { dest: '/', exclude: ['**/*.md', '!k/keep.md'] },
      { dest: '/opt/real/', chmod: 'u+x,g-r' },
      // through the image's symlink /opt/link → /opt/real, into a directory that is not there yet
      { dest: '/opt/link/sub/' },
      { dest: '/srv', link: true },
    ];
    for (const v of variants) {
      const params = { from, sources: ['src'], dest: '/', workdir: '/', now: 1000, destFs: fs, ...v };
      // not the planned list: a generator, made while the writer reads it
      expect(Array.isArray((await planCopy(params)).layerEntries())).toBe(false);
      const entries = await plannedBothWays(() => planCopy(params));
      expect(entries.length).toBeGreaterThan(8);
    }
    // directories inside the copied one take the source's metadata over the image's, as fsutil's copier
    // does (COPY src/ / gives /tmp the mode of src/tmp); the hard link stays one
    const seen = await collect(await plannedBothWays(() => planCopy({ from, sources: ['src'], dest: '/', workdir: '/', now: 1000, destFs: fs })));
    expect(seen['srv']).toMatchObject({ mode: '755', uid: 0, gid: 0 });
    expect(seen['srv']!.mtime).not.toBe(500);
    expect(seen['tmp']).toMatchObject({ mode: '755' });
    // the destination itself keeps the image's metadata
    const into = await collect(await plannedBothWays(() => planCopy({ from, sources: ['src/srv'], dest: '/srv', workdir: '/', now: 1000, destFs: fs })));
    expect(into['srv']).toMatchObject({ mode: '750', uid: 33, gid: 33, mtime: 500 });
    expect(seen['z/hard.txt']).toMatchObject({ type: 'hardlink', linkname: 'a.txt' });
    // an empty directory into a directory the image has: no entry at all; below a file: the same error both ways
    expect(await plannedBothWays(() => planCopy({ from, sources: ['src/e'], dest: '/srv/', workdir: '/', now: 1000, destFs: fs }))).toEqual([]);
    const f = await failure(plannedBothWays(() => planCopy({ from, sources: ['src'], dest: '/data/file/x', workdir: '/', now: 1000, destFs: fs })));
    expect(f.message).toMatch(/"\/data\/file" is not a directory in the image/);
  });

  it('keeps existing parents metadata (never resets /tmp) and creates missing ones 0755, owned per --chown', async () => {
    const { fs } = baseImage();
    const from = ctx({ 'a.txt': 'A' });
    const { seen } = await copy({ from, sources: ['a.txt'], dest: '/tmp/x/y/', destFs: fs, chown: '1000:1000' });
    expect(seen['tmp']).toMatchObject({ mode: '1777', uid: 0, gid: 0 });
    // BuildKit's MkdirAll gives the directories it creates the --chown owner
    expect(seen['tmp/x']).toMatchObject({ mode: '755', uid: 1000, gid: 1000 });
    expect(seen['tmp/x/y']).toMatchObject({ mode: '755', uid: 1000, gid: 1000 });
    expect(seen['tmp/x/y/a.txt']).toMatchObject({ uid: 1000, gid: 1000 });
    const srv = (await copy({ from, sources: ['a.txt'], dest: '/srv/www/', destFs: fs })).seen;
    expect(srv['srv']).toMatchObject({ mode: '750', uid: 33, gid: 33, mtime: 500 });
  });

  it('an existing directory destination without "/" receives the file; a symlink to one is followed', async () => {
    const { fs } = baseImage();
    const from = ctx({ 'a.txt': 'A' });
    expect(Object.keys((await copy({ from, sources: ['a.txt'], dest: '/tmp', destFs: fs })).seen)).toEqual(['tmp', 'tmp/a.txt']);
    expect(Object.keys((await copy({ from, sources: ['a.txt'], dest: '/opt/link', destFs: fs })).seen)).toEqual(['opt', 'opt/real', 'opt/real/a.txt']);
    expect(Object.keys((await copy({ from, sources: ['a.txt'], dest: '/opt/link/sub/', destFs: fs })).seen)).toEqual(['opt', 'opt/real', 'opt/real/sub', 'opt/real/sub/a.txt']);
  });

  it('refuses to copy below an existing non-directory', async () => {
    const { fs } = baseImage();
    const f = await failure(copy({ from: ctx({ 'a.txt': 'A' }), sources: ['a.txt'], dest: '/data/file/', destFs: fs }));
    expect(f.message).toMatch(/not a directory/);
  });

  it('--link ignores the parent file system', async () => {
    const { fs } = baseImage();
    const from = ctx({ 'a.txt': 'A' });
    const { seen } = await copy({ from, sources: ['a.txt'], dest: '/tmp', destFs: fs, link: true });
    expect(Object.keys(seen)).toEqual(['tmp']);
    expect(seen['tmp']).toMatchObject({ type: 'file', content: 'A' });
    const nested = (await copy({ from, sources: ['a.txt'], dest: '/tmp/x/', destFs: fs, link: true })).seen;
    expect(nested['tmp']).toMatchObject({ mode: '755', uid: 0 });
    // names in --chown still come from the image's passwd/group
    const named = (await copy({ from, sources: ['a.txt'], dest: '/srv/', destFs: fs, link: true, chown: 'app' })).seen;
    expect(named['srv/a.txt']).toMatchObject({ uid: 1000, gid: 1001 });
    expect(named['srv']).toMatchObject({ mode: '755', uid: 1000 });
  });
});

describe('COPY --from a layered file system', () => {
  it('reads through whiteouts and opaque directories', async () => {
    const lower = makeTree(tempDir(), { 'app/a': 'old-a', 'app/b': 'b', 'app/gone': 'x', 'cfg/old': 'o' });
    const upper = makeTree(tempDir(), { 'app/a': 'new-a', 'cfg/new': 'n' });
    const { execFileSync } = await import('node:child_process');
    execFileSync('mknod', [join(upper, 'app/gone'), 'c', '0', '0']);
    const { setXattr } = await import('../../src/layer/xattr.js');
    expect(() => setXattr(join(upper, 'cfg'), 'trusted.overlay.opaque', Buffer.from('y'))).not.toThrow();
    const stage = new LayeredFs([upper, lower], 'stage builder');
    const { seen } = await copy({ from: stage, sources: ['/app', '/cfg'], dest: '/out/' });
    expect(Object.keys(seen)).toEqual(['out', 'out/a', 'out/b', 'out/new']);
    expect(seen['out/a']!.content).toBe('new-a');
    const f = await failure(copy({ from: stage, sources: ['/app/gone'], dest: '/' }));
    expect(f.message).toBe('COPY failed: "/app/gone" not found in stage builder');
  });
});

describe('COPY --from keeps file capabilities', () => {
  it('carries security.capability into the entry and the digest', async () => {
    const snap = makeTree(tempDir(), { 'bin/ping': 'ELF', 'bin/plain': 'ELF' });
    const { setXattr } = await import('../../src/layer/xattr.js');
    // VFS_CAP_REVISION_2 | effective, permitted = CAP_NET_RAW (bit 13)
    const cap = Buffer.alloc(20);
    cap.writeUInt32LE(0x02000001, 0);
    cap.writeUInt32LE(1 << 13, 4);
    expect(() => setXattr(join(snap, 'bin/ping'), 'security.capability', cap)).not.toThrow();
    const r = await planCopy({ from: new LayeredFs([snap], 'stage tools'), sources: ['/bin/'], dest: '/usr/bin/', workdir: '/' });
    const ping = r.entries.find((e) => e.path === 'usr/bin/ping')!;
    expect(ping.xattrs?.['security.capability']?.equals(cap)).toBe(true);
    expect(r.entries.find((e) => e.path === 'usr/bin/plain')!.xattrs).toBeUndefined();
    const plainSnap = makeTree(tempDir(), { 'bin/ping': 'ELF', 'bin/plain': 'ELF' });
    const r2 = await planCopy({ from: new LayeredFs([plainSnap], 'stage tools'), sources: ['/bin/'], dest: '/usr/bin/', workdir: '/' });
    expect(r2.inputDigest).not.toBe(r.inputDigest);
  });
});

describe('cache-key input digest', () => {
  it('ignores mtime and owner; changes with mode, content, names and link targets', async () => {
    const dir = makeTree(tempDir(), { 'a.txt': 'A', 'd/b.txt': 'B', 'l': { link: 'a.txt' } });
    const digest = async () => (await planCopy({ from: BuildContext.open(dir), sources: ['.'], dest: '/', workdir: '/' })).inputDigest;
    const d0 = await digest();
    utimesSync(join(dir, 'a.txt'), 99, 99);
    chownSync(join(dir, 'd/b.txt'), 1234, 1234);
    expect(await digest()).toBe(d0);
    chmodSync(join(dir, 'a.txt'), 0o755);
    const d1 = await digest();
    expect(d1).not.toBe(d0);
    writeFileSync(join(dir, 'd/b.txt'), 'B2');
    const d2 = await digest();
    expect(d2).not.toBe(d1);
    mkdirSync(join(dir, 'e'));
    expect(await digest()).not.toBe(d2);
  });
});
