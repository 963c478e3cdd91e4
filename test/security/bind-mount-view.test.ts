import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.js';
import { hasMountSetattr, readonlyBindOptions } from '../../src/sandbox/mount.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * What a `RUN --mount=type=bind` of the build context and a `kiln run -v DIR:/v:ro` let the
 * container see and change. BuildKit sends a RUN only the context files `.dockerignore` does not
 * exclude; kiln binds the context directory itself, so it has to hide the rest. And a read-only
 * bind must stay read-only below it: a file system mounted inside the source directory was
 * writable through "ro", and writes there reached the host.
 */

let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

/** Runs `fn` with a tmpfs mounted at `dir` (created), unmounted after. */
async function withTmpfs<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
  try {
    return await fn();
  } finally {
    execFileSync('umount', [dir]);
  }
}

describe('RUN --mount=type=bind of the build context shows what .dockerignore leaves in', () => {
  const ignore = 'secret.env\n**/*.key\nnode_modules\ncache\n!cache/keep.txt\n';
  const files = {
    '.dockerignore': ignore,
    'secret.env': 'TOKEN=host-secret\n',
    'app.txt': 'app\n',
    'src/main.c': 'int main;\n',
    'src/deep/id.key': 'PRIVATE\n',
    'src/deep/ok.txt': 'ok\n',
    'node_modules/x/index.js': 'x\n',
    'cache/keep.txt': 'kept\n',
    'cache/drop.txt': 'dropped\n',
  };
  const listing = "find /m | sort > /list.txt; cat /m/app.txt /m/src/deep/ok.txt /m/cache/keep.txt > /read.txt; stat -c '%a %u %g %Y' /m/src/deep > /meta.txt";

  it('read-only: ignored files and directories are not there, the rest is, directories keep their metadata', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN --mount=type=bind,target=/m sh -c "${listing}"\n`, ...files });
    chmodSync(path.join(ctx, 'src', 'deep'), 0o750);
    utimesSync(path.join(ctx, 'src', 'deep'), 1_600_000_000, 1_600_000_000);
    await b.build(ctx, { tags: ['localhost/bind/ro:1'] });
    const list = (await b.read('localhost/bind/ro:1', '/list.txt')).split('\n').filter(Boolean);
    expect(list).toEqual([
      '/m', '/m/.dockerignore', '/m/Dockerfile', '/m/app.txt', '/m/cache', '/m/cache/keep.txt',
      '/m/src', '/m/src/deep', '/m/src/deep/ok.txt', '/m/src/main.c',
    ]);
    expect(await b.read('localhost/bind/ro:1', '/read.txt')).toBe('app\nok\nkept\n');
    expect(await b.read('localhost/bind/ro:1', '/meta.txt')).toBe('750 0 0 1600000000\n');
    // the host's files are all still there, unchanged
    expect(readFileSync(path.join(ctx, 'secret.env'), 'utf8')).toBe('TOKEN=host-secret\n');
    expect(readFileSync(path.join(ctx, 'cache', 'drop.txt'), 'utf8')).toBe('dropped\n');
  });

  it('rw: the same view, writes are discarded, nothing reaches the host', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}\nRUN --mount=type=bind,target=/m,rw sh -c "${listing}; cat /m/secret.env > /s.txt 2>&1 || true; echo x > /m/secret.env; echo y > /m/app.txt; rm /m/src/main.c"\n`,
      ...files,
    });
    await b.build(ctx, { tags: ['localhost/bind/rw:1'] });
    const list = (await b.read('localhost/bind/rw:1', '/list.txt')).split('\n').filter(Boolean);
    expect(list).not.toContain('/m/secret.env');
    expect(list).not.toContain('/m/src/deep/id.key');
    expect(list).not.toContain('/m/node_modules');
    expect(list).toContain('/m/cache/keep.txt');
    expect(await b.read('localhost/bind/rw:1', '/s.txt')).toMatch(/No such file/);
    expect(readFileSync(path.join(ctx, 'secret.env'), 'utf8')).toBe('TOKEN=host-secret\n');
    expect(readFileSync(path.join(ctx, 'app.txt'), 'utf8')).toBe('app\n');
    expect(existsSync(path.join(ctx, 'src', 'main.c'))).toBe(true);
  });

  it('a subdirectory as the source: only its own ignored entries are hidden', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN --mount=type=bind,source=src,target=/m sh -c "find /m | sort > /list.txt"\n`, ...files });
    await b.build(ctx, { tags: ['localhost/bind/sub:1'] });
    expect((await b.read('localhost/bind/sub:1', '/list.txt')).split('\n').filter(Boolean)).toEqual(['/m', '/m/deep', '/m/deep/ok.txt', '/m/main.c']);
  });
});

describe('a read-only bind is read-only below it too', () => {
  it.runIf(hasMountSetattr(execFileSync('uname', ['-r'], { encoding: 'utf8' })))('RUN --mount=type=bind of a context holding a mounted file system', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN --mount=type=bind,target=/m sh -c 'echo pwned > /m/sub/f; echo pwned > /m/f; ls /m/sub > /ls.txt'\n`, 'a.txt': 'a\n' });
    await withTmpfs(path.join(ctx, 'sub'), async () => {
      writeFileSync(path.join(ctx, 'sub', 'seen'), 'host\n');
      await b.build(ctx, { tags: ['localhost/bind/submount:1'] });
      expect(existsSync(path.join(ctx, 'sub', 'f'))).toBe(false);
    });
    expect(existsSync(path.join(ctx, 'f'))).toBe(false);
    expect(await b.read('localhost/bind/submount:1', '/ls.txt')).toBe('seen\n');
  });

  it.runIf(hasMountSetattr(execFileSync('uname', ['-r'], { encoding: 'utf8' })))('kiln run -v DIR:/v:ro where DIR holds a mounted file system', async () => {
    const vol = mkdtempSync(path.join(tmpdir(), 'kiln-vol-'));
    const prev = process.exitCode;
    try {
      await withTmpfs(path.join(vol, 'sub'), async () => {
        const code = await main(['--root', b.root, 'run', '--rm', '--network', 'none', '-v', `${vol}:/v:ro`, BASE, 'sh', '-c', 'echo pwned > /v/sub/f']);
        expect(code).not.toBe(0);
        expect(existsSync(path.join(vol, 'sub', 'f'))).toBe(false);
        // the same volume writable: the write goes through (the test's own control)
        expect(await main(['--root', b.root, 'run', '--rm', '--network', 'none', '-v', `${vol}:/v`, BASE, 'sh', '-c', 'echo ok > /v/sub/f'])).toBe(0);
        expect(readFileSync(path.join(vol, 'sub', 'f'), 'utf8')).toBe('ok\n');
      });
    } finally {
      process.exitCode = prev;
      rmSync(vol, { recursive: true, force: true });
    }
  });
});

describe('readonlyBindOptions', () => {
  it('asks for recursive read-only from Linux 5.12 on', () => {
    expect(readonlyBindOptions('6.1.0-18-amd64')).toEqual(['ro', 'rro']);
    expect(readonlyBindOptions('5.12.0')).toEqual(['ro', 'rro']);
    expect(readonlyBindOptions('5.11.22-generic')).toEqual(['ro']);
    expect(readonlyBindOptions('4.19.0')).toEqual(['ro']);
    expect(readonlyBindOptions('garbage')).toEqual(['ro']);
  });
});
