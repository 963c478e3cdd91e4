import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';

/**
 * RUN and `kiln run` resolve USER against the image's /etc/passwd and
 * /etc/group, read from the host side through the rootfs mount — where an
 * image's device nodes are live. A FIFO there blocked kiln in open(2) beyond
 * SIGTERM; a character device made it read the host's device (/dev/zero grew
 * memory without end). Each case runs in a child process against the
 * compiled tree in dist/ (built by `npm test`), bounded in time, so a kiln
 * that hangs fails the test instead of hanging it.
 */
const DIST = fileURLToPath(new URL('../../dist/sandbox/user.js', import.meta.url));
const base = mkdtempSync(join(tmpdir(), 'kiln-userdb-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
// the child runs dist/: compiled from the sources under test, not left stale
beforeAll(() => rebuildIfStale(['sandbox/user']));

function resolveIn(root: string, user: string): { status: number | null; signal: string | null; out: string; err: string } {
  const script = `import { resolveUser } from ${JSON.stringify(DIST)};
resolveUser(${JSON.stringify(root)}, ${JSON.stringify(user)}).then((u) => console.log(JSON.stringify(u)), (e) => { console.error(e.message); process.exit(3); });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000, killSignal: 'SIGKILL' });
  return { status: r.status, signal: r.signal, out: r.stdout.trim(), err: r.stderr.trim() };
}

function imageWith(name: string, make: (passwd: string) => void): string {
  const root = join(base, name);
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  make(join(root, 'etc/passwd'));
  return root;
}

function sh(cmd: string, ...args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

describe('the image user database is read only from a regular file', () => {
  it('a FIFO as /etc/passwd does not block kiln: it counts as absent', () => {
    const root = imageWith('fifo', (p) => sh('mkfifo', p));
    const asRoot = resolveIn(root, 'root');
    expect(asRoot.signal).toBeNull();
    expect(JSON.parse(asRoot.out)).toMatchObject({ uid: 0, gid: 0 });
    const named = resolveIn(root, 'app');
    expect(named.signal).toBeNull();
    expect(named.status).toBe(3);
    expect(named.err).toContain('unable to find user app: no matching entries in passwd file');
  });

  it('a character device as /etc/passwd (here /dev/zero, 1:5) is never opened', () => {
    const root = imageWith('chardev', (p) => sh('mknod', p, 'c', '1', '5'));
    const r = resolveIn(root, 'app');
    expect(r.signal).toBeNull();
    expect(r.status).toBe(3);
    expect(r.err).toContain('unable to find user app');
  });

  it('a regular file still works, and one over the 16 MiB limit is refused in one line', () => {
    const ok = imageWith('regular', (p) => writeFileSync(p, 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n'));
    expect(JSON.parse(resolveIn(ok, 'app').out)).toMatchObject({ uid: 1000, gid: 1000, home: '/home/app' });
    const big = imageWith('big', (p) => writeFileSync(p, Buffer.alloc(16 * 1024 * 1024 + 1, 0x23)));
    const r = resolveIn(big, 'app');
    expect(r.status).toBe(3);
    expect(r.err).toBe("/etc/passwd in the image is 16777217 bytes, over kiln's limit of 16 MiB for a user database");
  });
});

describe('COPY --chown reads the same database within the same bound', () => {
  it('an image whose /etc/passwd is over 16 MiB is refused in one line when COPY --chown names a user', async () => {
    const ctx = join(base, 'chown-ctx');
    mkdirSync(join(ctx, 'etc'), { recursive: true });
    writeFileSync(join(ctx, 'etc/passwd'), Buffer.alloc(16 * 1024 * 1024 + 1, 0x23));
    writeFileSync(join(ctx, 'f'), 'x');
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch AS base\nCOPY etc /etc\nFROM base\nCOPY --chown=app f /f\n');
    const r = await runKiln(['--root', join(base, 'chown-root'), 'build', '-q', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("/etc/passwd in the image is 16777217 bytes, over kiln's limit of 16 MiB for a user database");
  });
});
