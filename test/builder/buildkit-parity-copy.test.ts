/**
 * COPY and ADD built through kiln's build path, asserting owners, modes and
 * placement inside the built image against what BuildKit's Dockerfile frontend
 * and its file-op backend (fsutil's copier, go-archive's untar) produce. Each
 * test names the BuildKit behaviour it pins.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { chown, existsSync, linkSync, mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import { bench, BASE, type Bench } from './helpers.js';
import { KilnError } from '../../src/errors/index.js';
import type { FsNode } from '../../src/context/fs-view.js';

let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

/** Owner and octal mode of a path in an image, or the node type when it is not what was expected. */
async function meta(ref: string): Promise<(p: string) => { uid: number; gid: number; mode: string; type: FsNode['type'] } | undefined> {
  const fs = await b.fs(ref);
  return (p) => {
    const n = fs.lstat(p.replace(/^\//, ''));
    return n && { uid: n.uid, gid: n.gid, mode: n.mode.toString(8).padStart(4, '0'), type: n.type };
  };
}

const SOURCE_STAGE = [
  `FROM ${BASE} AS src`,
  'RUN touch /f && chown 100:200 /f && chmod 0640 /f \\',
  ' && mkdir -p /d/sub && touch /d/sub/n && chown 101:201 /d && chown 102:202 /d/sub && chmod 0711 /d/sub && chown 103:203 /d/sub/n \\',
  ' && mkdir -p /p/q && chown 104:204 /p && chown 106:206 /p/q && chmod 0750 /p/q \\',
  ' && touch /p/q/w1.txt /p/q/w2.txt && chown 105:205 /p/q/w1.txt /p/q/w2.txt',
].join('\n');

describe('COPY --from keeps uid, gid and mode (BuildKit: only context files become 0:0)', () => {
  it('stage by name and index, single file, directory, wildcard, --parents, --link, --chown and context files', async () => {
    const ctx = await b.context({
      Dockerfile: [
        SOURCE_STAGE,
        `FROM ${BASE}`,
        'RUN mkdir -p /existing/keep && chown 500:600 /existing /existing/keep && chmod 0700 /existing',
        'COPY --from=src /f /byname',
        'COPY --from=0 /f /byindex',
        'COPY --from=src /d /dir',
        'COPY --from=src /d/. /existing',
        'COPY --from=src /p/q/w*.txt /wild/',
        'COPY --parents --from=src /p/q/w1.txt /parents/',
        'COPY --link --from=src /f /linked',
        'COPY --from=src --chown=300:400 /f /d /chowned/',
        'COPY ctx.txt /ctx',
        '',
      ].join('\n'),
      'ctx.txt': 'from the context',
    });
    // a context file owned by someone on the build machine still arrives as 0:0
    await promisify(chown)(path.join(ctx, 'ctx.txt'), 1234, 1234);
    await b.build(ctx, { tags: ['localhost/t/owners:1'] });
    const m = await meta('localhost/t/owners:1');
    expect(m('/byname')).toMatchObject({ uid: 100, gid: 200, mode: '0640' });
    expect(m('/byindex')).toMatchObject({ uid: 100, gid: 200, mode: '0640' });
    // the destination directory COPY creates is root's; what is inside keeps its owners (testCopyChownExistingDir)
    expect(m('/dir')).toMatchObject({ uid: 0, gid: 0, mode: '0755' });
    expect(m('/dir/sub')).toMatchObject({ uid: 102, gid: 202, mode: '0711' });
    expect(m('/dir/sub/n')).toMatchObject({ uid: 103, gid: 203 });
    // an existing directory keeps its own owner and mode when COPY merges into it
    expect(m('/existing')).toMatchObject({ uid: 500, gid: 600, mode: '0700' });
    expect(m('/existing/keep')).toMatchObject({ uid: 500, gid: 600 });
    expect(m('/existing/sub')).toMatchObject({ uid: 102, gid: 202, mode: '0711' });
    expect(m('/existing/sub/n')).toMatchObject({ uid: 103, gid: 203 });
    expect(m('/wild/w1.txt')).toMatchObject({ uid: 105, gid: 205 });
    expect(m('/wild/w2.txt')).toMatchObject({ uid: 105, gid: 205 });
    // --parents copies the directories above the match from the source, metadata included
    expect(m('/parents/p')).toMatchObject({ uid: 104, gid: 204, mode: '0755' });
    expect(m('/parents/p/q')).toMatchObject({ uid: 106, gid: 206, mode: '0750' });
    expect(m('/parents/p/q/w1.txt')).toMatchObject({ uid: 105, gid: 205 });
    expect(m('/linked')).toMatchObject({ uid: 100, gid: 200, mode: '0640' });
    expect(m('/chowned/f')).toMatchObject({ uid: 300, gid: 400, mode: '0640' });
    expect(m('/chowned/sub/n')).toMatchObject({ uid: 300, gid: 400 });
    expect(m('/ctx')).toMatchObject({ uid: 0, gid: 0 });
  });

  it('an image reference keeps its owners too', async () => {
    const base = await b.context({ Dockerfile: `${SOURCE_STAGE}\n` });
    await b.build(base, { tags: ['localhost/t/owned-src:1'] });
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}\nCOPY --from=localhost/t/owned-src:1 /f /d /fromimage/\nCOPY --from=localhost/t/owned-src:1 /p/q/w*.txt /img-wild/\n`,
    });
    await b.build(ctx, { tags: ['localhost/t/owners:2'] });
    const m = await meta('localhost/t/owners:2');
    expect(m('/fromimage/f')).toMatchObject({ uid: 100, gid: 200, mode: '0640' });
    expect(m('/fromimage/sub')).toMatchObject({ uid: 102, gid: 202, mode: '0711' });
    expect(m('/fromimage/sub/n')).toMatchObject({ uid: 103, gid: 203 });
    expect(m('/img-wild/w2.txt')).toMatchObject({ uid: 105, gid: 205 });
  });
});

describe('COPY keeps hard links within one source (BuildKit: the copier links files of one inode)', () => {
  it('from a stage directory and from a context directory', async () => {
    const ctx = await b.context({
      Dockerfile: [
        `FROM ${BASE} AS src`,
        'RUN mkdir /hl && echo shared > /hl/a && ln /hl/a /hl/b && echo own > /hl/c',
        `FROM ${BASE}`,
        'COPY --from=src /hl /stage/',
        'COPY dir /ctx/',
        // two sources are two copies: their files are never linked to each other
        'COPY dir/one dir/two /apart/',
        '',
      ].join('\n'),
      'dir/one': 'same inode',
    });
    linkSync(path.join(ctx, 'dir/one'), path.join(ctx, 'dir/two'));
    await b.build(ctx, { tags: ['localhost/t/hardlinks:1'] });
    const fs = await b.fs('localhost/t/hardlinks:1');
    const ino = (p: string): number => fs.lstat(p)!.host!.ino;
    expect(ino('stage/a')).toBe(ino('stage/b'));
    expect(ino('stage/c')).not.toBe(ino('stage/a'));
    expect(ino('ctx/one')).toBe(ino('ctx/two'));
    expect(ino('apart/one')).not.toBe(ino('apart/two'));
    expect(await b.read('localhost/t/hardlinks:1', '/stage/b')).toBe('shared\n');
  });
});

describe('COPY follows symlinks in the destination inside the image (BuildKit: fs.RootPath)', () => {
  it('through links made by a RUN: relative, absolute, climbing, dangling, to a file; never on the host', async () => {
    const probe = `/tmp/kiln-probe-${randomBytes(6).toString('hex')}`;
    const ctx = await b.context({
      Dockerfile: [
        `FROM ${BASE}`,
        `RUN ln -s ../tmp/t /symlink && mkdir /real && ln -s /real /abs && ln -s ../../../.. /up \\`,
        ` && echo old > /target && ln -s /target /filelink && ln -s ${probe} /hostlink`,
        'COPY f.txt /symlink/',
        'COPY f.txt /abs/sub/',
        'COPY f.txt /up/escaped/',
        'COPY f.txt /filelink',
        'COPY f.txt /hostlink/',
        'WORKDIR /abs',
        'COPY f.txt rel/',
        '',
      ].join('\n'),
      'f.txt': 'new',
    });
    await b.build(ctx, { tags: ['localhost/t/symdest:1'] });
    const m = await meta('localhost/t/symdest:1');
    expect(m('/symlink')).toMatchObject({ type: 'symlink' });
    expect(await b.read('localhost/t/symdest:1', '/tmp/t/f.txt')).toBe('new');
    expect(m('/tmp')).toMatchObject({ mode: '1777' });
    expect(m('/abs')).toMatchObject({ type: 'symlink' });
    expect(m('/real/sub/f.txt')).toMatchObject({ type: 'file' });
    expect(m('/real/rel/f.txt')).toMatchObject({ type: 'file' });
    // `..` stops at the image root
    expect(m('/escaped/f.txt')).toMatchObject({ type: 'file' });
    // a link to a file is written through, the link stays
    expect(m('/filelink')).toMatchObject({ type: 'symlink' });
    expect(await b.read('localhost/t/symdest:1', '/target')).toBe('new');
    // an absolute link names a path in the image, never the build machine's
    expect(m(`${probe}/f.txt`)).toMatchObject({ type: 'file' });
    expect(existsSync(probe)).toBe(false);
  });
});

describe('ADD of a local archive (BuildKit: untar chrooted to the destination)', () => {
  it('extracts through existing symlinks inside the image and keeps hard links', async () => {
    const probe = `/tmp/kiln-probe-${randomBytes(6).toString('hex')}`;
    const ctx = await b.context({
      Dockerfile: [
        `FROM ${BASE}`,
        `RUN mkdir -p /run /var /real && ln -s /run /var/run && ln -s /real /abs && ln -s ${probe} /probe`,
        'ADD a.tar /',
        'ADD a.tar /sub/',
        '',
      ].join('\n'),
    });
    const src = path.join(b.dir, 'archive-src');
    for (const d of ['var/run', 'abs', 'probe']) mkdirSync(path.join(src, d), { recursive: true });
    writeFileSync(path.join(src, 'var/run/x'), 'x');
    writeFileSync(path.join(src, 'abs/y'), 'y');
    writeFileSync(path.join(src, 'probe/z'), 'z');
    writeFileSync(path.join(src, 'h1'), 'hard');
    linkSync(path.join(src, 'h1'), path.join(src, 'h2'));
    // file entries only: their directories exist in the image as symlinks
    execFileSync('tar', ['-cf', path.join(ctx, 'a.tar'), '--no-recursion', '-C', src, 'var/run/x', 'abs/y', 'probe/z', 'h1', 'h2']);
    await b.build(ctx, { tags: ['localhost/t/addlinks:1'] });
    const ref = 'localhost/t/addlinks:1';
    const m = await meta(ref);
    expect(m('/var/run')).toMatchObject({ type: 'symlink' });
    expect(await b.read(ref, '/run/x')).toBe('x');
    expect(m('/abs')).toMatchObject({ type: 'symlink' });
    expect(await b.read(ref, '/real/y')).toBe('y');
    expect(await b.read(ref, `${probe}/z`)).toBe('z');
    expect(existsSync(probe)).toBe(false);
    const fs = await b.fs(ref);
    const h1 = fs.lstat('h1')!;
    const h2 = fs.lstat('h2')!;
    expect(h1.host!.ino).toBe(h2.host!.ino);
    // below /sub nothing is linked: the entries are created where the archive says
    expect(await b.read(ref, '/sub/var/run/x')).toBe('x');
    expect(m('/sub/var/run')).toMatchObject({ type: 'directory', uid: 0, gid: 0, mode: '0755' });
    expect(fs.lstat('sub/h1')!.host!.ino).toBe(fs.lstat('sub/h2')!.host!.ino);
  });
});

describe('COPY --chmod on the directories it creates (BuildKit testCopyChmod)', () => {
  it('an octal --chmod sets the mode of created parents and destination; existing ones and symbolic modes do not', async () => {
    const ctx = await b.context({
      Dockerfile: [
        `FROM ${BASE}`,
        'COPY --chmod=0644 f.txt /',
        'COPY --chmod=777 f.txt /parent/f',
        'COPY --chmod=770 f.txt /parent/sub/f',
        'COPY --chmod=700 f.txt /tmp/x/f',
        'COPY --chmod=700 d /newdir',
        'COPY --chmod=u+x f.txt /sym/dir/f',
        'COPY --chmod=750 --chown=app f.txt /owned/dir/',
        '',
      ].join('\n'),
      'f.txt': { content: 'f', mode: 0o600 },
      'd/inner.txt': { content: 'i', mode: 0o644 },
    });
    await b.build(ctx, { tags: ['localhost/t/chmod:1'] });
    const m = await meta('localhost/t/chmod:1');
    expect(m('/f.txt')).toMatchObject({ mode: '0644' });
    expect(m('/parent')).toMatchObject({ mode: '0777' });
    expect(m('/parent/f')).toMatchObject({ mode: '0777' });
    expect(m('/parent/sub')).toMatchObject({ mode: '0770' });
    expect(m('/tmp')).toMatchObject({ mode: '1777' });
    expect(m('/tmp/x')).toMatchObject({ mode: '0700' });
    expect(m('/newdir')).toMatchObject({ mode: '0700' });
    expect(m('/newdir/inner.txt')).toMatchObject({ mode: '0700' });
    expect(m('/sym')).toMatchObject({ mode: '0755' });
    expect(m('/sym/dir')).toMatchObject({ mode: '0755' });
    expect(m('/sym/dir/f')).toMatchObject({ mode: '0700' });
    // created directories also take the --chown owner (BuildKit's MkdirAll chowns what it makes)
    expect(m('/owned')).toMatchObject({ mode: '0750', uid: 1000, gid: 1000 });
    expect(m('/owned/dir')).toMatchObject({ mode: '0750', uid: 1000, gid: 1000 });
  });
});

describe('COPY --from=$VAR (BuildKit: "variable expansion is not supported for --from")', () => {
  it('is refused with the file and line', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE} AS one\nFROM ${BASE}\nARG SRC=one\nCOPY --from=$SRC /etc/passwd /p\n` });
    const err = await b.build(ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).format()).toMatch(/^Dockerfile:4: variable expansion is not supported for --from/);
  });
});
