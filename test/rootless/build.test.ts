import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { copyFileSync, lstatSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chownTree, ensureTestUser, kilnAs, userDir, type TestUser } from '../helpers/rootless-user.js';
import type { KilnRun } from '../helpers/kiln-cli.js';
import { listOciArchive } from './image-listing.js';

/**
 * The whole build path as an unprivileged user with a subordinate range
 * (created by the test as root, as CI runs): RUN, chown to several ids,
 * COPY --chown, cache mounts, secrets, every --output type, kiln run and a
 * push, with owners and modes read back from the real layer tars.
 */
const reg = inject('registry');

const BASE = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
`;

const APP = `FROM localhost/rl-base:1
RUN mkdir -p /d && touch /d/root /d/five /d/app /d/top && chown 5:6 /d/five && chown 1000:1000 /d/app && chown 65536:65536 /d/top \\
 && chmod 4750 /d/five && mkdir /d/sticky && chmod 1777 /d/sticky
COPY --chown=33:44 f /f
COPY --chown=1234 --chmod=600 f /g
RUN --mount=type=cache,target=/cache,id=c1 echo run-1 >> /cache/log && cp /cache/log /log1
RUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /secret-len && ! test -e /run/secrets/token.copy
RUN rm -rf /d/sticky && mkdir /d/sticky && touch /d/sticky/new
`;

describe('rootless build as a user with a subordinate range', () => {
  let user: TestUser;
  let home: string;
  const run = (args: string[], input?: string): Promise<KilnRun> => kilnAs(user, args, { home, ...(input !== undefined ? { input } : {}) });
  const ok = (r: KilnRun): KilnRun => {
    if (r.code !== 0) throw new Error(`kiln exited ${r.code}: ${r.stderr.slice(-2000)}`);
    return r;
  };

  beforeAll(async () => {
    user = ensureTestUser();
    home = userDir(user);
    for (const [name, df] of [['base', BASE], ['app', APP]] as const) {
      mkdirSync(join(home, name));
      writeFileSync(join(home, name, 'Dockerfile'), df);
    }
    copyFileSync('/usr/bin/busybox', join(home, 'base', 'busybox'));
    writeFileSync(join(home, 'app', 'f'), 'file\n');
    writeFileSync(join(home, 'token'), 's3cret-value');
    mkdirSync(join(home, 'out'));
    chownTree(home, user);
    ok(await run(['build', '--network', 'none', '-t', 'localhost/rl-base:1', join(home, 'base')]));
  });
  afterAll(() => {
    rmSync(home, { recursive: true, force: true });
  });

  it('keeps every owner and mode the RUNs and COPY --chown give, in every output type', async () => {
    const o = join(home, 'out');
    const r = ok(await run([
      'build', '--network', 'none', '--secret', `id=token,src=${join(home, 'token')}`, '-t', 'localhost/rl-app:1',
      '--output', `type=oci,dest=${o}/app.oci.tar`, '--output', `type=docker,dest=${o}/app.docker.tar`,
      '--output', `type=tar,dest=${o}/fs.tar`, '--output', `type=local,dest=${o}/fs`, join(home, 'app'),
    ]));
    // no subordinate-id notice: the range is used
    expect(r.stderr).not.toMatch(/no subordinate ids/);
    const files = listOciArchive(join(o, 'app.oci.tar'));
    expect(files.get('d/root')).toMatchObject({ uid: 0, gid: 0, mode: '-rw-r--r--' });
    expect(files.get('d/five')).toMatchObject({ uid: 5, gid: 6, mode: '-rwsr-x---' });
    expect(files.get('d/app')).toMatchObject({ uid: 1000, gid: 1000 });
    expect(files.get('d/top')).toMatchObject({ uid: 65536, gid: 65536 });
    expect(files.get('f')).toMatchObject({ uid: 33, gid: 44, mode: '-rw-r--r--' });
    expect(files.get('g')).toMatchObject({ uid: 1234, gid: 1234, mode: '-rw-------' });
    // the last RUN replaced /d/sticky: an opaque directory in its layer (the marker lives in user.overlay.* here)
    expect(files.get('d/sticky/.wh..wh..opq')).toBeDefined();
    expect(files.get('d/sticky/new')).toBeDefined();
    expect(files.get('secret-len')).toBeDefined();
    expect([...files.keys()].some((p) => p.includes('run/secrets'))).toBe(false);

    // the final file system as a tar keeps the ids; as a directory on the host it stays the user's own
    const tarList = execFileSync('tar', ['--numeric-owner', '-tvf', join(o, 'fs.tar')], { encoding: 'utf8' });
    expect(tarList).toMatch(/^-rwsr-x--- 5\/6 .* d\/five$/m);
    expect(tarList).toMatch(/^-rw-r--r-- 33\/44 .* f$/m);
    for (const p of ['d/five', 'd/top', 'f', 'g']) expect(lstatSync(join(o, 'fs', p)).uid).toBe(user.uid);
    expect(readFileSync(join(o, 'fs', 'secret-len'), 'utf8').trim()).toBe('12');
    expect(readFileSync(join(o, 'fs', 'log1'), 'utf8')).toBe('run-1\n');

    // the docker archive holds the same layers
    const docker = execFileSync('tar', ['-tf', join(o, 'app.docker.tar')], { encoding: 'utf8' });
    expect(docker).toMatch(/manifest\.json/);
  });

  it('cache mounts persist between builds in the user\'s store', async () => {
    const dir = join(home, 'cache2');
    mkdirSync(dir);
    writeFileSync(join(dir, 'Dockerfile'), 'FROM localhost/rl-base:1\nRUN --mount=type=cache,target=/cache,id=c1,uid=1000,gid=1000 echo run-2 >> /cache/log && cp /cache/log /log2 && stat -c %u:%g /cache > /owner\n');
    chownTree(dir, user);
    ok(await run(['build', '--network', 'none', '--output', `type=local,dest=${join(home, 'out', 'c2')}`, dir]));
    expect(readFileSync(join(home, 'out', 'c2', 'log2'), 'utf8')).toBe('run-1\nrun-2\n');
  });

  it('kiln run runs a command in the image as the image user, with the default network', async () => {
    const r = ok(await run(['run', '--rm', 'localhost/rl-app:1', 'sh', '-c', 'id -u; stat -c %u:%g /d/five; cat /proc/self/uid_map | wc -l']));
    expect(r.stdout.split('\n').slice(0, 3)).toEqual(['0', '5:6', '2']);
  });

  it('pushes to the registry; what arrives keeps the owners', async () => {
    const ref = `${reg.anon}/rootless/app:1`;
    ok(await run(['tag', 'localhost/rl-app:1', ref]));
    ok(await run(['push', ref]));
    const pulledStore = join(home, 'pulled');
    // pulled back by root into another store, saved as an OCI archive and listed
    const { runKiln } = await import('../helpers/kiln-cli.js');
    expect((await runKiln(['--root', pulledStore, 'pull', ref])).code).toBe(0);
    expect((await runKiln(['--root', pulledStore, 'save', '--format', 'oci', '-o', join(home, 'pulled.tar'), ref])).code).toBe(0);
    const files = listOciArchive(join(home, 'pulled.tar'));
    expect(files.get('d/five')).toMatchObject({ uid: 5, gid: 6, mode: '-rwsr-x---' });
    expect(files.get('g')).toMatchObject({ uid: 1234, gid: 1234 });
  });

  it('an owner outside the mapped range is refused in one line naming the range', async () => {
    const dir = join(home, 'outside');
    mkdirSync(dir);
    writeFileSync(join(dir, 'Dockerfile'), 'FROM localhost/rl-base:1\nCOPY --chown=70000:70000 Dockerfile /x\n');
    chownTree(dir, user);
    const r = await run(['build', dir]);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('kiln: '))).toEqual([
      `kiln: Dockerfile:2: rootless: owner 70000:70000 is outside the ids mapped for ${user.name}: uids 0-65536, gids 0-65536 (from /etc/subuid and /etc/subgid) (a larger range in /etc/subuid and /etc/subgid (usermod --add-subuids/--add-subgids) maps more ids)`,
    ]);
  });
});
