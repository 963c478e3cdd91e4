import { existsSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildIfStale, runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/** `docker buildx build` command lines, run through bin/kiln against real builds. */
let b: Bench;

function kiln(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<KilnRun> {
  return runKiln(['--root', b.root, ...args], opts);
}

beforeAll(async () => {
  await rebuildIfStale(['cli/commands/build', 'cli/progress/render', 'cli/progress/rawjson', 'export/docker-daemon', 'sandbox/bundle', 'sandbox/docker-defaults', 'builder/options']);
  b = await bench();
  // the CLI opens the store itself
  await b.release();
}, 180_000);
afterAll(async () => {
  await b.cleanup();
});

describe('buildx flags', () => {
  it('--add-host lines reach the RUN\'s /etc/hosts and --shm-size sizes /dev/shm', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN cat /etc/hosts > /hosts.txt && df -k /dev/shm | tail -n 1 > /shm.txt\n` });
    const r = await kiln(['build', '--progress', 'plain', '--add-host', 'db.internal:10.1.2.3', '--add-host', 'v6host:[fd00::1]', '--shm-size', '32m', '--network', 'default', '-D', '-t', 'localhost/buildx/hosts:1', ctx]);
    expect(r.stderr).not.toMatch(/^kiln:/m);
    expect(r.code).toBe(0);
    await b.release();
    const hosts = await b.read('localhost/buildx/hosts:1', '/hosts.txt');
    expect(hosts).toContain('10.1.2.3\tdb.internal\n');
    expect(hosts).toContain('fd00::1\tv6host\n');
    expect((await b.read('localhost/buildx/hosts:1', '/shm.txt')).trim().split(/\s+/)[1]).toBe('32768');
    await b.release();
  });

  it('--add-host and --shm-size are part of the RUN\'s cache key: a rebuild with other values runs it again', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN cat /etc/hosts > /hosts.txt && df -k /dev/shm | tail -n 1 > /shm.txt\n` });
    const build = async (args: string[]) => {
      const r = await kiln(['build', '--progress', 'plain', ...args, ctx]);
      expect(r.code).toBe(0);
      return r.stderr.trim().split('\n').at(-1);
    };
    expect(await build(['--add-host', 'db.internal:10.0.0.1'])).toMatch(/^1 steps ran, 0 cached/);
    expect(await build(['--add-host', 'db.internal:10.0.0.1'])).toMatch(/^0 steps ran, 1 cached/);
    expect(await build(['--add-host', 'db.internal:10.0.0.2', '-t', 'localhost/buildx/hosts-key:2'])).toMatch(/^1 steps ran, 0 cached/);
    expect(await build(['--add-host', 'db.internal:10.0.0.2', '--shm-size', '16m', '-t', 'localhost/buildx/hosts-key:3'])).toMatch(/^1 steps ran, 0 cached/);
    // without the flags the RUN has its own record, never one made with them
    expect(await build([])).toMatch(/^1 steps ran, 0 cached/);
    expect(await build(['--shm-size', '16m'])).toMatch(/^1 steps ran, 0 cached/);
    await b.release();
    expect(await b.read('localhost/buildx/hosts-key:2', '/hosts.txt')).toContain('10.0.0.2\tdb.internal\n');
    expect((await b.read('localhost/buildx/hosts-key:3', '/shm.txt')).trim().split(/\s+/)[1]).toBe('16384');
    await b.release();
  });

  it('--no-cache-filter STAGE runs that stage\'s steps again and keeps the cache of the others', async () => {
    const ctx = await b.context({ Dockerfile: 'FROM scratch AS deps\nCOPY a /a\nFROM scratch AS app\nCOPY --from=deps /a /a\nCOPY b /b\n', a: 'a', b: 'b' });
    const build = async (args: string[]) => {
      const r = await kiln(['build', '--progress', 'plain', ...args, ctx]);
      expect(r.code, r.stderr).toBe(0);
      return r.stderr.trim().split('\n').at(-1);
    };
    expect(await build([])).toMatch(/^3 steps ran, 0 cached/);
    expect(await build([])).toMatch(/^0 steps ran, 3 cached/);
    // the deps stage's one step runs again; app's two stay cached (its input, /a, is the same)
    expect(await build(['--no-cache-filter', 'deps'])).toMatch(/^1 steps ran, 2 cached/);
    expect(await build(['--no-cache-filter', 'deps', '--no-cache-filter', 'app'])).toMatch(/^3 steps ran, 0 cached/);
  });

  it('--add-host refuses a value that could inject another hosts line', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\n` });
    const r = await kiln(['build', '--add-host', 'a:1.2.3.4\n5.6.7.8 evil', ctx]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^kiln: invalid --add-host/);
  });

  it('--builder is refused with one line saying why; a --cgroup-parent that could leave the cgroup tree is a usage error', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\n` });
    const r = await kiln(['build', '--builder', 'mybuilder', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^kiln: --builder mybuilder: kiln is daemonless/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const c = await kiln(['build', '--cgroup-parent', '../escape', ctx]);
    expect(c.code).toBe(2);
    expect(c.stderr.trim().split('\n')).toHaveLength(1);
    expect(c.stderr).toMatch(/--cgroup-parent "\.\.\/escape": want a cgroup path of plain names/);
  });

  it('--cgroup-parent places every RUN\'s cgroup under that cgroup, with limits and accounting intact', async () => {
    const parent = `kiln-test-parent-${process.pid}`;
    // the hierarchies kiln's RUN cgroups are made in: the memory controller (v1) or the unified tree
    const mount = ['/sys/fs/cgroup/memory', '/sys/fs/cgroup/unified', '/sys/fs/cgroup'].find((m) => existsSync(path.join(m, 'cgroup.procs')))!;
    const kilnDir = path.join(mount, parent, 'kiln');
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN while [ ! -e /tmp/never ] && [ $((n+=1)) -lt 40 ]; do sleep 0.1; done; echo ran\n` });
    const running = kiln(['build', '--progress', 'plain', '--no-cache', '--cgroup-parent', `/${parent}`, '--memory', '64m', ctx]);
    // while the RUN runs its cgroup is there, under the parent
    const runs = (): string[] => (existsSync(kilnDir) ? readdirSync(kilnDir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name) : []);
    let limit: string | undefined;
    try {
      for (let i = 0; i < 600 && runs().length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      expect(runs()).toHaveLength(1);
      // the RUN's limit sits on its cgroup (kiln/<id>/c) under the parent; the runtime makes the cgroup
      // before it writes the limit, so the file is read again until the limit is there or the RUN ends
      const limitFile = path.join(kilnDir, runs()[0]!, 'c', mount.endsWith('memory') ? 'memory.limit_in_bytes' : 'memory.max');
      const want = String(64 * 1024 * 1024);
      for (let i = 0; i < 80 && existsSync(limitFile); i++) {
        limit = readFileSync(limitFile, 'utf8').trim();
        if (limit === want) break;
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      await running;
    }
    expect(limit).toBe(String(64 * 1024 * 1024));
    const r = await running;
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/DONE .*cpu \d/);
    // kiln removed the RUN's cgroup when it ended; the parent is the caller's
    expect(runs()).toEqual([]);
    for (const m of readdirSync('/sys/fs/cgroup').map((d) => path.join('/sys/fs/cgroup', d))) {
      for (const d of [path.join(m, parent, 'kiln'), path.join(m, parent)]) if (existsSync(d)) rmdirSync(d);
    }
  });

  it('--load fails before building, in one line, when no Docker daemon answers', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN touch /never\n` });
    const sock = path.join(b.dir, 'no-docker.sock');
    const r = await kiln(['build', '--progress', 'plain', '--load', ctx], { env: { DOCKER_HOST: `unix://${sock}` } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`kiln: --load: no Docker daemon answers at unix://${sock} (connect ENOENT ${sock}); set DOCKER_HOST, or write the archive with -o type=docker,dest=FILE\n`);
    const remote = await kiln(['build', '--load', ctx], { env: { DOCKER_HOST: 'tcp://192.0.2.1:2375' } });
    expect(remote.stderr).toMatch(/DOCKER_HOST=tcp:\/\/192\.0\.2\.1:2375 is not supported/);
  });

  it('--call targets and --call outline print what the dedicated commands print', async () => {
    const ctx = await b.context({ Dockerfile: `ARG VERSION=1\n# the base\nFROM ${BASE} AS base\n# the app\nFROM base AS app\nARG VERSION\nRUN echo $VERSION\n` });
    for (const call of ['targets', 'outline']) {
      const viaBuild = await kiln(['build', '--call', call, ctx]);
      const direct = await kiln([call, ctx]);
      expect(viaBuild.code).toBe(0);
      expect(viaBuild.stdout).toBe(direct.stdout);
      expect(viaBuild.stdout).toContain(call === 'targets' ? 'the app' : 'VERSION');
    }
    const bad = await kiln(['build', '--call', 'lint', ctx]);
    expect(bad.code).toBe(2);
  });

  it('--progress rawjson prints BuildKit SolveStatus lines: vertexes and base64 logs', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo raw-hello\n` });
    const r = await kiln(['build', '--progress', 'rawjson', '--no-cache', ctx]);
    expect(r.code).toBe(0);
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as { vertexes?: Array<{ name: string; completed?: string }>; logs?: Array<{ data: string; stream: number }> });
    const run = lines.flatMap((l) => l.vertexes ?? []).filter((v) => v.name.endsWith('RUN echo raw-hello'));
    expect(run.some((v) => v.completed !== undefined)).toBe(true);
    const logs = lines.flatMap((l) => l.logs ?? []).map((l) => Buffer.from(l.data, 'base64').toString());
    expect(logs).toContain('raw-hello\n');
  });

  it('--build-context NAME=docker-image://REF serves FROM NAME and COPY --from=NAME; an unknown source kind is refused by name', async () => {
    const ctx = await b.context({ Dockerfile: `FROM mybase\nCOPY --from=tools /bin/busybox /copied-busybox\nRUN echo ok > /named.txt\n` });
    const r = await kiln(['build', '--progress', 'plain', '--build-context', `mybase=docker-image://${BASE}`, '--build-context', `tools=docker-image://${BASE}`, '-t', 'localhost/buildx/named:1', ctx]);
    expect(r.stderr).not.toMatch(/^kiln:/m);
    expect(r.code).toBe(0);
    await b.release();
    expect(await b.read('localhost/buildx/named:1', '/named.txt')).toBe('ok\n');
    const fs = await b.fs('localhost/buildx/named:1');
    expect(fs.lstat('copied-busybox')?.size).toBe(fs.lstat('bin/busybox')?.size);
    await b.release();
    const bad = await kiln(['build', '--build-context', 'mybase=s3://bucket/x', ctx]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toMatch(/unsupported source s3:\/\//);
  });

  it('plain progress numbers the steps within each stage and names the resolved base, as buildx does', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE} AS base\nENV A=1\nRUN echo one\nWORKDIR /w\nFROM base\nCOPY Dockerfile /d\nRUN echo two\n` });
    const r = await kiln(['build', '--progress', 'plain', '--no-cache', ctx]);
    expect(r.code).toBe(0);
    const top = await (await b.store()).resolveImage(BASE);
    await b.release();
    // FROM an image is step 1 of its stage; ENV makes no vertex in buildx, so it has no number
    expect(r.stderr).toContain(`[base 1/3] FROM localhost/busybox:latest@${top!.digest}\n`);
    expect(r.stderr).toMatch(/^\[base\] ENV A=1$/m);
    expect(r.stderr).toMatch(/^\[base 2\/3\] RUN echo one$/m);
    expect(r.stderr).toMatch(/^\[base 3\/3\] WORKDIR \/w$/m);
    // FROM another stage is no step of its own
    expect(r.stderr).toMatch(/^\[stage-1 1\/2\] COPY Dockerfile \/d$/m);
    expect(r.stderr).toMatch(/^\[stage-1 2\/2\] RUN echo two$/m);
    // one stage: no stage name; numbers padded to the width of the total, as buildx pads them
    const long = await b.context({ Dockerfile: `FROM ${BASE}\n${Array.from({ length: 10 }, (_, i) => `RUN echo r${i}\n`).join('')}` });
    const l = await kiln(['build', '--progress', 'plain', long]);
    expect(l.stderr).toMatch(/^\[ 2\/11\] RUN echo r0$/m);
    expect(l.stderr).toMatch(/^\[11\/11\] RUN echo r9$/m);
  });

  it('-o DIR writes the file system and -o - writes it as a tar to stdout', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY x.txt /out/x.txt\n`, 'x.txt': 'exported' });
    const dir = path.join(b.dir, 'o-dir');
    const r = await kiln(['build', '--progress', 'quiet', '-o', dir, ctx]);
    expect(r.code).toBe(0);
    expect(await readFile(path.join(dir, 'out/x.txt'), 'utf8')).toBe('exported');
    const t = await kiln(['build', '--progress', 'quiet', '-o', '-', ctx]);
    expect(t.code).toBe(0);
    expect(t.stdout).toContain('out/x.txt');
    expect(t.stdout).toContain('exported');
  });
});
