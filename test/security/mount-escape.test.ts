import { existsSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * RUN --mount sources from every kind of tree (a stage, an image, the build
 * context; ro and rw binds; cache mounts seeded from a stage) that hold
 * symlinks pointing at a host file: the mount shows the tree's own file or
 * the build is refused, and the host file is never read or written.
 */

const SECRET = 'HOST-SECRET-c41a';
let b: Bench;
let hostDir: string;

/** A stage whose links all aim at `hostDir`, which also exists inside it holding "inside". */
function evilStage(): string {
  return `FROM ${BASE} AS evil
RUN mkdir -p ${hostDir} /d/e && echo inside > ${hostDir}/secret.txt \\
 && ln -s ${hostDir}/secret.txt /abs \\
 && ln -s / /root-link \\
 && ln -s ../../../../../../../../.. /d/e/up \\
 && ln -s ${hostDir} /parent \\
 && ln -s /d/e/up/parent /chain
`;
}

beforeAll(async () => {
  b = await bench();
  hostDir = path.join(b.dir, 'host');
  await mkdir(hostDir);
  await writeFile(path.join(hostDir, 'secret.txt'), SECRET);
});
afterAll(async () => {
  await b.cleanup();
});

async function expectHostUntouched(): Promise<void> {
  expect(await readFile(path.join(hostDir, 'secret.txt'), 'utf8')).toBe(SECRET);
  expect(existsSync(path.join(hostDir, 'written'))).toBe(false);
}

describe('RUN --mount from a stage or an image resolves inside it', () => {
  it('absolute links, a link to /, ".." chains, symlinked parents: every read shows the stage file', async () => {
    const ctx = await b.context({
      Dockerfile: `${evilStage()}FROM ${BASE}
RUN --mount=type=bind,from=evil,source=/abs,target=/m cat /m > /abs.txt
RUN --mount=type=bind,from=evil,source=/root-link${hostDir}/secret.txt,target=/m cat /m > /root.txt
RUN --mount=type=bind,from=evil,source=/d/e/up${hostDir}/secret.txt,target=/m cat /m > /dotdot.txt
RUN --mount=type=bind,from=evil,source=/parent/secret.txt,target=/m cat /m > /parent.txt
RUN --mount=type=bind,from=evil,source=/chain/secret.txt,target=/m cat /m > /chain.txt
RUN --mount=type=bind,from=evil,source=/parent,target=/m cat /m/secret.txt > /dir.txt
RUN --mount=type=cache,from=evil,source=/parent,target=/c,id=seeded cat /c/secret.txt > /cache.txt
RUN --mount=type=cache,from=evil,source=/d/e/up/parent,target=/c,id=seeded2 cat /c/secret.txt > /cache2.txt
`,
    });
    await b.build(ctx, { tags: ['localhost/sec/stage:1'] });
    for (const f of ['abs', 'root', 'dotdot', 'parent', 'chain', 'dir', 'cache', 'cache2']) {
      expect(await b.read('localhost/sec/stage:1', `/${f}.txt`), f).toBe('inside\n');
    }
    await expectHostUntouched();
  });

  it('an rw bind of a link to / writes only into a throwaway copy of the stage', async () => {
    const ctx = await b.context({
      Dockerfile: `${evilStage()}FROM ${BASE}
RUN --mount=type=bind,from=evil,source=/root-link,target=/m,rw sh -c 'echo pwned > /m${hostDir}/written; echo pwned > /m${hostDir}/secret.txt; cat /m${hostDir}/secret.txt > /rw.txt; echo pwned > /m/parent/written2 || true'
RUN --mount=type=bind,from=evil,source=/parent,target=/m,rw sh -c 'echo pwned > /m/written; cat /m/secret.txt > /rw2.txt'
`,
    });
    await b.build(ctx, { tags: ['localhost/sec/rw:1'] });
    expect(await b.read('localhost/sec/rw:1', '/rw.txt')).toBe('pwned\n');
    expect(await b.read('localhost/sec/rw:1', '/rw2.txt')).toBe('inside\n');
    await expectHostUntouched();
    expect(existsSync(path.join(hostDir, 'written2'))).toBe(false);
  });

  it('an image (not a stage of this build) as the source: same', async () => {
    const evil = await b.context({ Dockerfile: evilStage() });
    await b.build(evil, { tags: ['localhost/sec/evil:1'] });
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}
RUN --mount=type=bind,from=localhost/sec/evil:1,source=/abs,target=/m cat /m > /img.txt
RUN --mount=type=bind,from=localhost/sec/evil:1,source=/chain,target=/m cat /m/secret.txt > /img2.txt
`,
    });
    await b.build(ctx, { tags: ['localhost/sec/img:1'] });
    expect(await b.read('localhost/sec/img:1', '/img.txt')).toBe('inside\n');
    expect(await b.read('localhost/sec/img:1', '/img2.txt')).toBe('inside\n');
  });
});

describe('RUN --mount from the build context refuses links that leave it', () => {
  const refused: Array<[string, string]> = [
    ['an absolute link to a file', 'abs-link'],
    ['a relative ".." chain', 'up/HOST/secret.txt'],
    ['a symlinked parent directory', 'parent-link/secret.txt'],
    ['".." out of a subdirectory', 'sub/out/secret.txt'],
  ];
  it.each(refused)('%s', async (_name, source) => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}\nRUN --mount=type=bind,source=${source.replace('HOST', hostDir.slice(1))},target=/m cat /m* > /out.txt\n`,
      'sub/keep': 'x',
    });
    await symlink(path.join(hostDir, 'secret.txt'), path.join(ctx, 'abs-link'));
    await symlink('../../../../../../../../..', path.join(ctx, 'up'));
    await symlink(hostDir, path.join(ctx, 'parent-link'));
    await symlink(path.relative(path.join(ctx, 'sub'), hostDir), path.join(ctx, 'sub/out'));
    const err = await b.build(ctx, { tags: ['localhost/sec/ctx:1'] }).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('UNSAFE_PATH');
    expect(isKilnError(err) && err.message).toMatch(/resolves outside the build context/);
    await expectHostUntouched();
  });

  it('a link that stays inside the context works, and a cache mount from the context is unaffected', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}\nRUN --mount=type=bind,source=ok,target=/m cat /m/f.txt > /ok.txt\n`,
      'real/f.txt': 'in context\n',
    });
    await symlink('real', path.join(ctx, 'ok'));
    await b.build(ctx, { tags: ['localhost/sec/ok:1'] });
    expect(await b.read('localhost/sec/ok:1', '/ok.txt')).toBe('in context\n');
  });
});

describe('mount points a RUN leaves behind are removed inside its layer, never through a link it made', () => {
  // The runtime creates missing mount points (a cache mount's target, /etc/hosts) in the RUN's
  // upperdir, and kiln drops them from the layer afterwards. The RUN's own processes can move a
  // mount point's parent away and put a symlink to a host directory in its place; the removal
  // must not follow it (BuildKit's CVE-2024-23652 was this mistake).
  async function hostTree(name: string, files: string[]): Promise<string> {
    const dir = path.join(b.dir, name);
    for (const f of files) {
      await mkdir(path.dirname(path.join(dir, f)), { recursive: true });
      await writeFile(path.join(dir, f), `host ${f}\n`);
    }
    return dir;
  }
  async function expectHostFiles(dir: string, files: string[]): Promise<void> {
    for (const f of files) expect(await readFile(path.join(dir, f), 'utf8'), f).toBe(`host ${f}\n`);
  }

  it('a created parent swapped for a link to a host directory: the host directory keeps its entry', async () => {
    // `other` keeps the host directory from looking empty of everything but the mount point
    const files = ['victim/file', 'other'];
    const host = await hostTree('swap-created', files);
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}\nRUN --mount=type=cache,target=/a/victim,id=swap mv /a /b && ln -s ${host} /a\n`,
    });
    await b.build(ctx, { tags: ['localhost/sec/swap-created:1'] });
    await expectHostFiles(host, files);
    // the layer holds what the RUN made: the link, and the moved directory
    const fs = await b.fs('localhost/sec/swap-created:1');
    expect(fs.lstat('a')?.type).toBe('symlink');
    expect(fs.readlink('a')).toBe(host);
    expect(fs.lstat('b')?.type).toBe('directory');
  });

  it('a created directory inside an existing one (/etc/new in /etc) swapped for a link: the host directory keeps its entry', async () => {
    // an existing directory itself cannot be renamed away (overlayfs answers EXDEV without
    // redirect_dir), but one the runtime created inside it can
    const files = ['victim/file', 'other'];
    const host = await hostTree('swap-nested', files);
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}\nRUN --mount=type=cache,target=/etc/new/victim,id=nested mv /etc/new /etc/moved && ln -s ${host} /etc/new\n`,
    });
    await b.build(ctx, { tags: ['localhost/sec/swap-nested:1'] });
    await expectHostFiles(host, files);
    const fs = await b.fs('localhost/sec/swap-nested:1');
    expect(fs.readlink('etc/new')).toBe(host);
    expect(fs.lstat('etc/moved')?.type).toBe('directory');
    expect(fs.lstat('etc/passwd')?.type).toBe('file');
  });

  it('without a swap the mount points are still left out of the layer', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN --mount=type=cache,target=/a/victim,id=plain echo made > /made.txt\n` });
    await b.build(ctx, { tags: ['localhost/sec/plain:1'] });
    const fs = await b.fs('localhost/sec/plain:1');
    expect(await b.read('localhost/sec/plain:1', '/made.txt')).toBe('made\n');
    expect(fs.lstat('a')).toBeUndefined();
    expect(fs.lstat('etc/hosts')).toBeUndefined();
  });
});
