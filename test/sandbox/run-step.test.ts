import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { executeRun, runFailure, type RunStepInput } from '../../src/steps/run.js';
import { heredocRun } from '../../src/steps/heredoc.js';
import { leftovers, makeEnv, tarEntries, type TestEnv } from './fixtures.js';

let env: TestEnv;

beforeAll(() => {
  env = makeEnv();
});
afterAll(() => env.cleanup());

function input(script: string, extra: Partial<RunStepInput> = {}, lines?: string[]): RunStepInput {
  return {
    store: env.store,
    lowerdirs: [env.lower],
    args: ['/bin/sh', '-c', `exec 2>&1; ${script}`],
    env: [],
    workdir: '/',
    network: 'host',
    mounts: [],
    layer: { compression: 'uncompressed' },
    onOutput: (_s, l) => lines?.push(l),
    ...extra,
  };
}

async function run(script: string, extra: Partial<RunStepInput> = {}): Promise<{ out: string[]; files: ReturnType<typeof tarEntries>; tar?: Buffer; hasLayer: boolean }> {
  const out: string[] = [];
  const r = await executeRun(input(script, extra, out));
  if (!r.layer) return { out, files: [], hasLayer: false };
  const tar = await env.store.readBlob(r.layer.digest);
  return { out, files: tarEntries(tar), tar, hasLayer: true };
}

const paths = (files: ReturnType<typeof tarEntries>): string[] => files.map((f) => f.path);

describe('RUN step', () => {
  test('USER by name gets the primary group and the supplementary groups listing it', async () => {
    expect((await run('id', { user: 'app' })).out).toEqual(['uid=1000(app) gid=1000(app) groups=1000(app),2000(extra),2001(other)']);
  });

  test('USER uid, name:group, uid:gid and an unknown uid follow Docker', async () => {
    expect((await run('id', { user: '1000' })).out).toEqual(['uid=1000(app) gid=1000(app) groups=1000(app),2000(extra),2001(other)']);
    expect((await run('id', { user: 'app:extra' })).out).toEqual(['uid=1000(app) gid=2000(extra) groups=2000(extra)']);
    expect((await run('id', { user: '4242:4343' })).out).toEqual(['uid=4242 gid=4343 groups=4343']);
    expect((await run('id', { user: '4242' })).out).toEqual(['uid=4242 gid=0(root) groups=0(root)']);
  });

  test('an unknown USER name fails the RUN', async () => {
    const err = await executeRun(input('true', { user: 'ghost' })).catch((e: unknown) => e);
    expect(isKilnError(err) && err.message).toMatch(/unable to find user ghost/);
  });

  test('WORKDIR is created (owned by the user) and is part of the layer', async () => {
    const r = await run('pwd; touch f', { workdir: '/srv/app/data', user: 'app' });
    expect(r.out).toEqual(['/srv/app/data']);
    expect(paths(r.files)).toEqual(['srv', 'srv/app', 'srv/app/data', 'srv/app/data/f']);
  });

  test('ENV and build args are visible; PATH, HOME and HOSTNAME get defaults', async () => {
    const r = await run('echo "$FOO|$PATH|$HOME|$HOSTNAME"', { env: ['FOO=bar baz'], user: 'app' });
    expect(r.out).toEqual(['bar baz|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|/home/app|buildkitsandbox']);
  });

  test('a write becomes a layer entry, a delete a whiteout; mount points and /etc files stay out', async () => {
    const r = await run('echo hello > /hello.txt; rm /etc/keep; cat /etc/hosts > /dev/null');
    expect(paths(r.files).sort()).toEqual(['etc', 'etc/.wh.keep', 'hello.txt']);
    expect(r.files.find((f) => f.path === 'hello.txt')?.data.toString()).toBe('hello\n');
  });

  test('an empty diff makes no layer; /etc/hosts, /proc, /dev, /sys created by the runtime are not a diff', async () => {
    const r = await run('true');
    expect(r.hasLayer).toBe(false);
  });

  test('a RUN that writes into /etc keeps /etc but not the generated files', async () => {
    const r = await run('echo x > /etc/new; echo changed > /etc/hostname 2>/dev/null; true');
    expect(paths(r.files).sort()).toEqual(['etc', 'etc/new']);
  });

  test('a secret is readable in the RUN and absent from the layer bytes', async () => {
    const value = 'sekr1t-7f3a9c-value';
    const r = await run('cat /run/secrets/tok; echo; echo "$TOKEN_ENV"; ls -ln /run/secrets/tok | cut -c1-10; echo ok > /done', {
      mounts: [
        { type: 'secret', id: 'tok', data: Buffer.from(value) },
        { type: 'secret', id: 'envtok', env: 'TOKEN_ENV', data: Buffer.from(value) },
      ],
    });
    expect(r.out.slice(0, 3)).toEqual([value, value, '-r--------']);
    expect(paths(r.files)).toEqual(['done']);
    expect(r.tar?.includes(Buffer.from(value))).toBe(false);
    expect(r.tar?.includes(Buffer.from('secrets'))).toBe(false);
  });

  test('a required secret that is missing fails; an optional one is skipped', async () => {
    const err = await executeRun(input('true', { mounts: [{ type: 'secret', id: 'nope', required: true }] })).catch((e: unknown) => e);
    expect(isKilnError(err) && err.message).toMatch(/secret nope is required/);
    expect((await run('test -e /run/secrets/nope; echo $?', { mounts: [{ type: 'secret', id: 'nope' }] })).out).toEqual(['1']);
  });

  test('a cache mount persists between RUNs and is never in the layer', async () => {
    const mounts = [{ type: 'cache' as const, target: '/root/.cache', id: 'pkg' }];
    const first = await run('echo one >> /root/.cache/log', { mounts });
    expect(first.hasLayer).toBe(false);
    const second = await run('echo two >> /root/.cache/log; cat /root/.cache/log', { mounts });
    expect(second.out).toEqual(['one', 'two']);
    expect(second.hasLayer).toBe(false);
    expect(existsSync(join(env.root, 'cache-mounts'))).toBe(true);
  });

  test('cache mount options: uid/gid/mode apply on creation; locked sharing serialises two RUNs', async () => {
    const m = { type: 'cache' as const, target: '/c', id: 'locked-one', sharing: 'locked' as const, uid: 1000, gid: 1000, mode: 0o750 };
    const r = await run('stat -c "%u:%g %a" /c', { mounts: [m] });
    expect(r.out).toEqual(['1000:1000 750']);
    const script = 'if [ -e /c/busy ]; then echo overlap; fi; touch /c/busy; sleep 0.3; rm /c/busy';
    const [a, b] = await Promise.all([run(script, { mounts: [m] }), run(script, { mounts: [m] })]);
    expect([...a.out, ...b.out]).not.toContain('overlap');
  });

  test('private sharing gives a busy cache to one RUN and another instance to the other', async () => {
    const m = { type: 'cache' as const, target: '/c', id: 'priv', sharing: 'private' as const };
    const script = 'touch /c/mark-$$; sleep 0.3; ls /c | wc -l';
    const [a, b] = await Promise.all([run(script, { mounts: [m] }), run(script, { mounts: [m] })]);
    expect([a.out[0], b.out[0]]).toEqual(['1', '1']);
  });

  test('a cache seeded from another directory (from=/source=) starts with its contents', async () => {
    const seed = join(env.base, 'seed');
    mkdirSync(seed, { recursive: true });
    writeFileSync(join(seed, 'warm.txt'), 'warm\n');
    const r = await run('cat /c/warm.txt; echo more > /c/new', { mounts: [{ type: 'cache', target: '/c', id: 'seeded', seed: { root: seed, path: '', chroot: true, label: 'seed' }, seedKey: 'seed' }] });
    expect(r.out).toEqual(['warm']);
    expect(existsSync(join(seed, 'new'))).toBe(false);
  });

  test('a single-file bind mount with rw gets a private copy', async () => {
    const file = join(env.base, 'one.conf');
    writeFileSync(file, 'a=1\n');
    const r = await run('echo b=2 >> /etc/one.conf; cat /etc/one.conf', { mounts: [{ type: 'bind', source: { root: env.base, path: 'one.conf', chroot: false, label: 'test tree' }, target: '/etc/one.conf', readwrite: true }] });
    expect(r.out).toEqual(['a=1', 'b=2']);
    expect(readFileSync(file, 'utf8')).toBe('a=1\n');
    expect(r.hasLayer).toBe(false);
  });

  test('tmpfs mounts are writable and not in the layer', async () => {
    const r = await run('echo x > /scratch/x; grep " /scratch " /proc/mounts | cut -d" " -f3', { mounts: [{ type: 'tmpfs', target: '/scratch', size: 1 << 20 }] });
    expect(r.out).toEqual(['tmpfs']);
    expect(r.hasLayer).toBe(false);
  });

  test('bind mounts: read-only by default; rw writes are discarded', async () => {
    const src = join(env.base, 'ctx');
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, 'a.txt'), 'from context\n');
    const ro = await run('cat /ctx/a.txt; echo y > /ctx/b.txt; echo "rc=$?"', { mounts: [{ type: 'bind', source: { root: src, path: '', chroot: false, label: 'context' }, target: '/ctx' }] });
    expect(ro.out[0]).toBe('from context');
    expect(ro.out.at(-1)).toMatch(/rc=[1-9]/);
    const rw = await run('echo y > /ctx/a.txt; cat /ctx/a.txt', { mounts: [{ type: 'bind', source: { root: src, path: '', chroot: false, label: 'context' }, target: '/ctx', readwrite: true }] });
    expect(rw.out).toEqual(['y']);
    expect(readFileSync(join(src, 'a.txt'), 'utf8')).toBe('from context\n');
    expect(rw.hasLayer).toBe(false);
  });

  test('ssh: the agent socket is forwarded and SSH_AUTH_SOCK points at it', async () => {
    const sock = join(env.base, 'agent.sock');
    const server: Server = createServer((c) => c.end('agent-hello\n'));
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      // busybox has no unix-socket client: the socket's presence and type is what can be checked from inside
      const r = await run('test -S "$SSH_AUTH_SOCK" && echo "$SSH_AUTH_SOCK"', { mounts: [{ type: 'ssh', socket: sock }] });
      expect(r.out).toEqual(['/run/buildkit/ssh_agent.0']);
      expect(r.hasLayer).toBe(false);
    } finally {
      server.close();
    }
  });

  test('ssh: a key file is refused, never mounted where the RUN could read the private key', async () => {
    const key = join(env.base, 'id_ed25519');
    writeFileSync(key, 'PRIVATE-KEY-MATERIAL\n', { mode: 0o600 });
    const err = await run('cat "$SSH_AUTH_SOCK"', { mounts: [{ type: 'ssh', socket: key }] }).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('USAGE');
    expect(isKilnError(err) && err.message).toContain(`--ssh default=${key}: not an SSH agent socket`);
    expect(readFileSync(key, 'utf8')).toBe('PRIVATE-KEY-MATERIAL\n');
  });

  test('heredoc scripts run through the whole SHELL: as its command text, or from /dev/pipes with #!', async () => {
    const plain = heredocRun(['/bin/sh', '-c'], 'EOF', 'echo one\necho two > /two\n');
    expect(plain.mount).toBeUndefined();
    const r1 = await run('', { args: plain.args, mounts: [] });
    expect(r1.out).toEqual(['one']);
    expect(paths(r1.files)).toEqual(['two']);
    const shebang = heredocRun(['/bin/sh', '-c'], 'SCRIPT', '#!/bin/sh\necho "via $0"\n');
    expect((await run('', { args: shebang.args, mounts: [shebang.mount!] })).out).toEqual(['via /dev/pipes/SCRIPT']);
    // the SHELL's own flags hold for the script: -e stops it at the first failing command
    const strict = heredocRun(['/bin/sh', '-e', '-c'], 'EOF', 'false\necho reached > /reached\n');
    const err = await run('', { args: strict.args, mounts: [] }).catch((e: unknown) => e);
    expect(runFailure(err)?.exitCode).toBe(1);
  });

  test('non-zero exit → RUN_FAILED with the exit code and the last output lines; the log file keeps everything', async () => {
    const log = join(env.base, 'step.log');
    const err = await executeRun(input('for i in $(seq 1 50); do echo line$i; done; echo oops >&2; exit 3', { logFile: log })).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('RUN_FAILED');
    expect(runFailure(err)?.exitCode).toBe(3);
    expect(runFailure(err)?.outputTail.at(-1)).toBe('oops');
    expect((err as Error).message).toMatch(/exit code 3/);
    expect((err as Error).message).toContain('oops');
    expect(readFileSync(log, 'utf8').split('\n').filter(Boolean)).toHaveLength(51);
  });

  test('resource use is reported; limits reach the cgroup and rlimits', async () => {
    const r = await executeRun(input('i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; ulimit -n', {
      limits: { memory: 64 << 20, pidsLimit: 50, ulimits: [{ name: 'nofile', soft: 256, hard: 512 }] },
    }, []));
    expect(r.usage.cpuSeconds).toBeGreaterThan(0);
    expect(r.usage.peakMemoryBytes).toBeGreaterThan(0);
    const out: string[] = [];
    await executeRun(input('cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; ulimit -n', { limits: { memory: 64 << 20, pidsLimit: 50, ulimits: [{ name: 'nofile', soft: 256, hard: 512 }] } }, out));
    expect(out).toEqual([String(64 << 20), '50', '256']);
  });

  test('an rlimit above kiln’s own hard limit is refused up front', async () => {
    const err = await executeRun(input('true', { limits: { ulimits: [{ name: 'nofile', soft: 1 << 30, hard: 1 << 30 }] } })).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('SANDBOX');
  });

  test('FROM scratch: no lowers', async () => {
    const err = await executeRun(input('true', { lowerdirs: [] })).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('RUN_FAILED');
  });

  test('nothing is left behind', async () => {
    const l = await leftovers(env.root);
    expect(l.mounts).toEqual([]);
    expect(l.containers.filter((c) => c.startsWith(`kiln-r${process.pid.toString(36)}.`))).toEqual([]);
    expect(l.tmp).toEqual([]);
  });
});
