import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFile, chmod, readFile, mkdtemp, readdir, stat, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { bench, cachedSteps, executedSteps, ranSteps, BASE, type Bench } from './helpers.js';
import { expectValidStoredImage } from '../helpers/oci-validate.js';
import { KilnError } from '../../src/errors/index.js';

let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

describe('kiln build: metadata and files', () => {
  it('writes COPY content, modes and owners and every config field', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}
LABEL a=1 "b c"=two
MAINTAINER someone@example.com
ENV X=1 Y=\${X}-y
WORKDIR /srv
WORKDIR app
COPY --chown=app:app --chmod=0640 secret.txt ./
COPY tool.sh /usr/local/bin/
COPY dir/ /data/
EXPOSE 80 53/udp 8000-8001
VOLUME ["/var/lib/x"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --retries=2 CMD ["/bin/true"]
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo child
USER app
ENTRYPOINT ["/usr/local/bin/tool.sh"]
CMD ["--help"]
`,
      'secret.txt': 'not really secret\n',
      'tool.sh': { content: '#!/bin/sh\necho tool\n', mode: 0o755 },
      'dir/one.txt': 'one',
      'dir/sub/two.txt': 'two',
    });
    const { result } = await b.build(ctx, { tags: ['localhost/t/meta:1'], labels: { from: 'cli' } });
    const c = result.config.config!;
    expect(c.Labels).toEqual({ a: '1', 'b c': 'two', from: 'cli' });
    expect(result.config.author).toBe('someone@example.com');
    expect(c.Env).toContain('X=1');
    // ENV A=1 B=$A sees A from before the instruction (unset here), as Docker does
    expect(c.Env).toContain('Y=-y');
    expect(c.WorkingDir).toBe('/srv/app');
    expect(c.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} });
    expect(c.Volumes).toEqual({ '/var/lib/x': {} });
    expect(c.StopSignal).toBe('SIGTERM');
    expect(c.Healthcheck).toEqual({ Test: ['CMD', '/bin/true'], Interval: 30e9, Timeout: 5e9, Retries: 2 });
    expect(c.Shell).toEqual(['/bin/sh', '-ec']);
    expect(c.OnBuild).toEqual(['RUN echo child']);
    expect(c.User).toBe('app');
    expect(c.Entrypoint).toEqual(['/usr/local/bin/tool.sh']);
    expect(c.Cmd).toEqual(['--help']);

    const fs = await b.fs('localhost/t/meta:1');
    const secret = fs.lstat('srv/app/secret.txt')!;
    expect(secret).toMatchObject({ type: 'file', mode: 0o640, uid: 1000, gid: 1000 });
    expect(await b.read('localhost/t/meta:1', '/srv/app/secret.txt')).toBe('not really secret\n');
    expect(fs.lstat('usr/local/bin/tool.sh')).toMatchObject({ mode: 0o755, uid: 0, gid: 0 });
    expect(await b.read('localhost/t/meta:1', '/data/sub/two.txt')).toBe('two');
    expect(fs.lstat('data')).toMatchObject({ type: 'directory' });
    // an existing parent keeps its metadata: /tmp stays 1777 after a COPY into it elsewhere
    expect(fs.lstat('tmp')).toMatchObject({ mode: 0o1777 });

    const history = result.config.history!;
    expect(history.filter((h) => !h.empty_layer)).toHaveLength(1 + result.config.rootfs.diff_ids.length - 1);
    expect(history.some((h) => h.created_by === 'ENV X=1 Y=-y' && h.empty_layer)).toBe(true);
    await expectValidStoredImage(await b.store(), result.manifestDigest);
  });

  it('COPY --link makes a layer independent of its parent and still resolves --chown names', async () => {
    const files = { 'f.txt': 'linked' };
    const one = await b.context({ Dockerfile: `FROM ${BASE}\nENV V=1\nCOPY --link --chown=app f.txt /opt/f.txt\n`, ...files });
    const two = await b.context({ Dockerfile: `FROM ${BASE}\nENV V=2\nRUN echo other > /other\nCOPY --link --chown=app f.txt /opt/f.txt\n`, ...files });
    // directories the step creates get the build time, so fix it for both builds
    const r1 = await b.build(one, { tags: ['localhost/t/link:1'], sourceDateEpoch: 1 });
    const r2 = await b.build(two, { tags: ['localhost/t/link:2'], sourceDateEpoch: 1 });
    // the same bytes whatever came before: the layer does not depend on its parent
    expect(r1.result.config.rootfs.diff_ids.at(-1)).toBe(r2.result.config.rootfs.diff_ids.at(-1));
    expect((await b.fs('localhost/t/link:2')).lstat('opt/f.txt')).toMatchObject({ uid: 1000, gid: 1000 });
    // and its cache record survives a change below it: a new base line, the linked COPY is a hit
    const three = await b.context({ Dockerfile: `FROM ${BASE}\nENV V=3\nCOPY --link --chown=app f.txt /opt/f.txt\n`, ...files });
    const r3 = await b.build(three, { sourceDateEpoch: 1 });
    expect(cachedSteps(r3.events)).toEqual(['COPY --link --chown=app f.txt /opt/f.txt']);
  });

  it('ENTRYPOINT resets an inherited CMD', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nENTRYPOINT ["/bin/echo"]\n` });
    const { result } = await b.build(ctx);
    expect(result.config.config?.Entrypoint).toEqual(['/bin/echo']);
    expect(result.config.config?.Cmd ?? null).toBeNull();
  });

  it('runs RUN in the sandbox with USER, WORKDIR, ENV and build args; the diff becomes a layer', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}
ARG GREETING=hi
ENV WHO=world
WORKDIR /work
RUN echo "$GREETING $WHO from $(pwd)" > out.txt && rm /etc/group && mkdir -p /opt/x
USER app
RUN id -u > /tmp/uid.txt
`,
    });
    const { result, events } = await b.build(ctx, { tags: ['localhost/t/run:1'], buildArgs: { GREETING: 'hello' } });
    expect(await b.read('localhost/t/run:1', '/work/out.txt')).toBe('hello world from /work\n');
    expect(await b.read('localhost/t/run:1', '/tmp/uid.txt')).toBe('1000\n');
    const fs = await b.fs('localhost/t/run:1');
    expect(fs.lstat('etc/group')).toBeUndefined();
    expect(fs.lstat('etc/passwd')).toBeDefined();
    expect(fs.lstat('opt/x')).toMatchObject({ type: 'directory' });
    // hosts/resolv.conf/hostname are bind mounts, never part of a layer
    expect(fs.lstat('etc/hosts')).toBeUndefined();
    expect(ranSteps(events)).toHaveLength(2);
    const run = result.config.history!.find((h) => h.created_by?.includes('out.txt'));
    expect(run?.created_by).toMatch(/^RUN \|1 GREETING=hello \/bin\/sh -c echo/);
  });

  it('keeps a RUN upperdir as the layer\'s snapshot, identical to extracting the layer', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN mkdir -p /opt/x && echo 1 > /opt/x/f && ln -s f /opt/x/l && rm -rf /etc/group /home && mkdir /tmp/t\n` });
    await b.build(ctx, { tags: ['localhost/t/adopt:1'] });
    const walkAll = async () => {
      const { walk } = await import('../../src/context/fs-view.js');
      const fs = await b.fs('localhost/t/adopt:1');
      return [...walk(fs, '')].map(([p, n]) => `${p} ${n.type} ${n.mode.toString(8)} ${n.uid}:${n.gid} ${n.linkname ?? ''}`);
    };
    const adopted = await walkAll();
    expect(adopted).toContain('opt/x/l symlink 777 0:0 f');
    expect(adopted.some((l) => l.startsWith('etc/group '))).toBe(false);
    expect(adopted.some((l) => l.startsWith('home'))).toBe(false);
    // throw the snapshot away: the store extracts the layer blob instead, and the view is the same
    const store = await b.store();
    const img = await store.getImage('localhost/t/adopt:1');
    const top = img.layers.at(-1)!;
    const dir = await store.snapshotPath(top);
    await rm(dir, { recursive: true, force: true });
    await rm(`${dir}.diffid`, { force: true });
    expect(await walkAll()).toEqual(adopted);
  });

  it('writes the snapshot of a COPY or WORKDIR layer with its blob when a later RUN mounts it, and none for a last COPY', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}\nWORKDIR /w\nCOPY --chown=5:6 --chmod=0640 a.txt sub/\nRUN stat -c '%u:%g %a' /w/sub/a.txt > /w/st\nCOPY b.txt /w/\n`,
      'a.txt': 'a\n',
      'b.txt': 'b\n',
    });
    await b.build(ctx, { tags: ['localhost/t/copysnap:1'] });
    const store = await b.store();
    const img = await store.getImage('localhost/t/copysnap:1');
    const [workdir, copy, run, last] = img.layers.slice(-4);
    const exists = async (p: string) => stat(p).then(() => true, () => false);
    // looked up without snapshotPath, which would extract a missing one
    for (const l of [workdir!, copy!, run!]) expect(await exists(`${store.snapshotDir(l.diffID)}.diffid`)).toBe(true);
    expect(await exists(store.snapshotDir(last!.diffID))).toBe(false);
    const copied = await stat(path.join(store.snapshotDir(copy!.diffID), 'w/sub/a.txt'));
    expect([copied.uid, copied.gid, copied.mode & 0o7777]).toEqual([5, 6, 0o640]);
    expect((await b.read('localhost/t/copysnap:1', 'w/st')).trim()).toBe('5:6 640');
    // recorded as verified: the writer hashed the very tar the snapshot was unpacked from
    const record = JSON.parse(await readFile(path.join(b.root, 'meta', 'diffids', copy!.diffID.slice(7)), 'utf8')) as Array<{ digest: string; verified?: boolean }>;
    expect(record).toContainEqual(expect.objectContaining({ digest: copy!.descriptor.digest, verified: true }));
    // the same tree as extracting the blob
    const { walk } = await import('../../src/context/fs-view.js');
    const { LayeredFs } = await import('../../src/context/layered-fs.js');
    const list = async () => [...walk(new LayeredFs([await store.snapshotPath(copy!)], 'copy'), '')].map(([p, n]) => `${p} ${n.type} ${n.mode.toString(8)} ${n.uid}:${n.gid} ${n.size ?? ''}`);
    const written = await list();
    const dir = store.snapshotDir(copy!.diffID);
    await rm(dir, { recursive: true, force: true });
    await rm(`${dir}.diffid`, { force: true });
    expect(await list()).toEqual(written);
    expect(written).toContain('w/sub/a.txt file 640 5:6 2');
  });

  it('an empty RUN diff records an empty_layer history entry and no layer', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN true\n` });
    const { result } = await b.build(ctx);
    expect(result.config.rootfs.diff_ids).toHaveLength(1);
    expect(result.config.history!.at(-1)).toMatchObject({ empty_layer: true });
  });
});

describe('kiln build: cache', () => {
  it('hits on an unchanged rebuild, and re-runs exactly what a changed file affects', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}\nCOPY a.txt /a.txt\nRUN cat /a.txt > /a-copy.txt\nCOPY b.txt /b.txt\nRUN cat /b.txt > /b-copy.txt\n`,
      'a.txt': 'A1',
      'b.txt': 'B1',
      'unrelated.txt': 'x',
    });
    const first = await b.build(ctx, { tags: ['localhost/t/cache:1'] });
    expect(cachedSteps(first.events)).toEqual([]);

    const again = await b.build(ctx, { tags: ['localhost/t/cache:1'] });
    expect(cachedSteps(again.events)).toHaveLength(4);
    expect(executedSteps(again.events)).toEqual([]);

    // a file no step reads, a comment and whitespace change nothing
    await writeFile(path.join(ctx, 'unrelated.txt'), 'y');
    await writeFile(path.join(ctx, 'Dockerfile'), `# a comment\nFROM ${BASE}\nCOPY   a.txt /a.txt\nRUN cat /a.txt > /a-copy.txt\n\nCOPY b.txt /b.txt\nRUN cat /b.txt > /b-copy.txt\n`);
    const cosmetic = await b.build(ctx, { tags: ['localhost/t/cache:1'], buildArgs: { NOBODY_DECLARES: '1' } });
    expect(executedSteps(cosmetic.events)).toEqual([]);

    await writeFile(path.join(ctx, 'b.txt'), 'B2');
    const changed = await b.build(ctx, { tags: ['localhost/t/cache:1'], explainCache: true });
    expect(cachedSteps(changed.events)).toEqual(['COPY   a.txt /a.txt', 'RUN cat /a.txt > /a-copy.txt']);
    expect(executedSteps(changed.events)).toEqual(['COPY b.txt /b.txt', 'RUN cat /b.txt > /b-copy.txt']);
    const miss = changed.events.find((e) => e.type === 'step-done' && e.step.text === 'COPY b.txt /b.txt');
    expect(miss && miss.type === 'step-done' ? miss.missReason : '').toBe('file b.txt changed');
    expect(await b.read('localhost/t/cache:1', '/b-copy.txt')).toBe('B2');

    // a file's mode is part of its content
    await chmod(path.join(ctx, 'a.txt'), 0o600);
    const mode = await b.build(ctx, { tags: ['localhost/t/cache:1'] });
    expect(executedSteps(mode.events)[0]).toBe('COPY   a.txt /a.txt');

    const nocache = await b.build(ctx, { noCache: true });
    expect(cachedSteps(nocache.events)).toEqual([]);
  });

  it('makes the same image on an unchanged rebuild without SOURCE_DATE_EPOCH, timed by its layers as BuildKit does', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nENV A=1\nRUN echo one > /one.txt\nLABEL l=1\nCOPY f.txt /f.txt\nENV B=2\n`, 'f.txt': 'f' });
    const first = await b.build(ctx, { tags: ['localhost/t/times:1'] });
    await new Promise((r) => setTimeout(r, 1100)); // a second later: a time taken now would differ
    const again = await b.build(ctx, { tags: ['localhost/t/times:1'] });
    expect(executedSteps(again.events)).toEqual([]);
    expect(again.result.manifestDigest).toBe(first.result.manifestDigest);

    const history = first.result.config.history!;
    const ours = history.slice(-5);
    expect(ours.map((h) => h.created_by)).toEqual(['ENV A=1', 'RUN /bin/sh -c echo one > /one.txt # buildkit', 'LABEL l=1', 'COPY f.txt /f.txt # buildkit', 'ENV B=2']);
    const [envA, run, label, copy, envB] = ours.map((h) => h.created!);
    // a metadata step takes the time of the first new layer, then of the layer before it
    expect(envA).toBe(run);
    expect(label).toBe(run);
    expect(envB).toBe(copy);
    expect(first.result.config.created).toBe(copy);
    // a change makes a new layer and a new time
    await writeFile(path.join(ctx, 'f.txt'), 'g');
    const changed = await b.build(ctx, { tags: ['localhost/t/times:1'] });
    expect(changed.result.config.created! > first.result.config.created!).toBe(true);
    expect(changed.result.config.history!.at(-5)!.created).toBe(run);
  });

  it('gives byte-identical images with SOURCE_DATE_EPOCH, even across stores', async () => {
    const files = { Dockerfile: `FROM ${BASE}\nCOPY f.txt /f.txt\nRUN echo built > /built.txt\n`, 'f.txt': 'same' };
    const ctx = await b.context(files);
    const one = await b.build(ctx, { sourceDateEpoch: 1700000000, noCache: true });
    const other = await bench();
    try {
      const ctx2 = await other.context(files);
      const two = await other.build(ctx2, { sourceDateEpoch: 1700000000 });
      expect(two.result.manifestDigest).toBe(one.result.manifestDigest);
      expect(two.result.config.created).toBe('2023-11-14T22:13:20Z');
    } finally {
      await other.cleanup();
    }
  });
});

describe('kiln build: stages', () => {
  it('builds only what --target needs, copies between stages, runs independent stages', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE} AS one
RUN echo one > /one.txt
FROM ${BASE} AS two
RUN echo two > /two.txt
FROM ${BASE} AS broken
RUN exit 3
FROM scratch AS final
COPY --from=one /one.txt /
COPY --from=1 /two.txt /
`,
    });
    const { result, events } = await b.build(ctx, { target: 'final', tags: ['localhost/t/stages:1'] });
    expect(ranSteps(events).sort()).toEqual(['RUN echo one > /one.txt', 'RUN echo two > /two.txt']);
    expect(await b.read('localhost/t/stages:1', '/one.txt')).toBe('one\n');
    expect(await b.read('localhost/t/stages:1', '/two.txt')).toBe('two\n');
    expect(result.config.rootfs.diff_ids).toHaveLength(2);
  });

  it('runs independent stages at the same time', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE} AS left\nRUN sleep 1 && echo left > /left\nFROM ${BASE} AS right\nRUN sleep 1 && echo right > /right\nFROM scratch\nCOPY --from=left /left /\nCOPY --from=right /right /\n`,
    });
    const { events } = await b.build(ctx, { jobs: 2 });
    const at = (type: string, text: string) => events.findIndex((e) => e.type === type && 'step' in e && e.step.text.startsWith(text));
    // each stage's RUN starts before the other one's finishes: they overlap
    expect(at('step-start', 'RUN sleep 1 && echo right')).toBeLessThan(at('step-done', 'RUN sleep 1 && echo left'));
    expect(at('step-start', 'RUN sleep 1 && echo left')).toBeLessThan(at('step-done', 'RUN sleep 1 && echo right'));
    const serial = await b.build(await b.context({ Dockerfile: `FROM ${BASE} AS left\nRUN sleep 1 && echo L > /l\nFROM ${BASE} AS right\nRUN sleep 1 && echo R > /r\nFROM scratch\nCOPY --from=left /l /\nCOPY --from=right /r /\n` }), { jobs: 1 });
    const at1 = (type: string, text: string) => serial.events.findIndex((e) => e.type === type && 'step' in e && e.step.text.startsWith(text));
    expect(at1('step-done', 'RUN sleep 1 && echo L')).toBeLessThan(at1('step-start', 'RUN sleep 1 && echo R'));
  });

  it('bind-mounts a multi-layer stage and the context into a RUN, without putting them in a layer', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE} AS src\nCOPY a.txt /data/a.txt\nRUN echo b > /data/b.txt\nFROM ${BASE}\nRUN --mount=type=bind,from=src,source=/data,target=/mnt --mount=type=bind,source=ctx,target=/ctx cat /mnt/a.txt /mnt/b.txt /ctx/c.txt > /out.txt\n`,
      'a.txt': 'a\n',
      'ctx/c.txt': 'c\n',
    });
    const { result } = await b.build(ctx, { tags: ['localhost/t/bind:1'] });
    expect(await b.read('localhost/t/bind:1', '/out.txt')).toBe('a\nb\nc\n');
    const fs = await b.fs('localhost/t/bind:1');
    expect(fs.lstat('mnt/a.txt')).toBeUndefined();
    expect(fs.lstat('ctx')).toBeUndefined();
    expect(result.config.rootfs.diff_ids).toHaveLength(2);
  });

  it('runs ONBUILD triggers of the base first', async () => {
    const parent = await b.context({ Dockerfile: `FROM ${BASE}\nONBUILD RUN echo triggered > /trigger.txt\n` });
    await b.build(parent, { tags: ['localhost/t/onbuild-parent:1'] });
    const child = await b.context({ Dockerfile: `FROM localhost/t/onbuild-parent:1\nRUN cat /trigger.txt > /seen.txt\n` });
    const { result } = await b.build(child, { tags: ['localhost/t/onbuild-child:1'] });
    expect(await b.read('localhost/t/onbuild-child:1', '/seen.txt')).toBe('triggered\n');
    expect(result.config.config?.OnBuild ?? null).toBeNull();
  });

  it('an ONBUILD COPY --from names a stage of the child that nothing else names: that stage is built for it (as BuildKit)', async () => {
    const parent = await b.context({ Dockerfile: `FROM ${BASE}\nONBUILD COPY --from=builder /out.txt /from-builder.txt\n` });
    await b.build(parent, { tags: ['localhost/t/onbuild-from-parent:1'] });
    // the target's own instructions do not name "builder": the planner leaves it out, the trigger brings it back
    const child = await b.context({ Dockerfile: `FROM ${BASE} AS builder\nRUN echo built > /out.txt\nFROM localhost/t/onbuild-from-parent:1\n` });
    await b.build(child, { tags: ['localhost/t/onbuild-from-child:1'] });
    expect(await b.read('localhost/t/onbuild-from-child:1', '/from-builder.txt')).toBe('built\n');
    // a stage defined after the one whose trigger names it is refused, never waited on
    const later = await b.context({ Dockerfile: `FROM localhost/t/onbuild-from-parent:1 AS app\nFROM ${BASE} AS builder\nRUN echo built > /out.txt\nFROM app\n` });
    const err = (await b.build(later).catch((e: unknown) => e)) as KilnError;
    expect(err).toBeInstanceOf(KilnError);
    expect(err.message).toMatch(/stage "builder" is defined at or after the stage that names it/);
  });
});

describe('kiln build: errors', () => {
  it('names the Dockerfile line of a missing COPY source and leaves the store usable', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\n\nCOPY nope.txt /\n` });
    const err = await b.build(ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).format()).toMatch(/^Dockerfile:3: .*nope\.txt/);
  });

  it('reports a failing RUN with its exit code and output', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo going down && exit 7\n` });
    const err = (await b.build(ctx).catch((e: unknown) => e)) as KilnError;
    expect(err.code).toBe('RUN_FAILED');
    expect(err.format()).toMatch(/^Dockerfile:2: .*exit code 7/);
    expect(err.format()).toContain('going down');
  });

  it('rejects an unknown instruction with the line and a hint', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUNN echo\n` });
    const err = (await b.build(ctx).catch((e: unknown) => e)) as KilnError;
    expect(err.format()).toMatch(/^Dockerfile:2: unknown instruction "RUNN"/);
  });
});

describe('kiln build: outputs', () => {
  it('writes oci, docker, local and tar outputs that real tools read', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY hello.txt /hello.txt\n`, 'hello.txt': 'hello\n' });
    const out = await mkdtemp(path.join(b.dir, 'out-'));
    const oci = path.join(out, 'img.oci.tar');
    const docker = path.join(out, 'img.docker.tar');
    const local = path.join(out, 'rootfs');
    const tar = path.join(out, 'rootfs.tar');
    const { result } = await b.build(ctx, {
      tags: ['localhost/t/out:1'],
      outputs: [
        { type: 'oci', dest: oci, tar: true },
        { type: 'docker', dest: docker },
        { type: 'local', dest: local },
        { type: 'tar', dest: tar },
      ],
    });
    const ociInfo = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${oci}`], { encoding: 'utf8' })) as { Digest: string; Layers: string[] };
    expect(ociInfo.Layers).toHaveLength(2);
    const dockerInfo = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${docker}`], { encoding: 'utf8' })) as { Layers: string[] };
    expect(dockerInfo.Layers).toHaveLength(2);
    expect(await readFile(path.join(local, 'hello.txt'), 'utf8')).toBe('hello\n');
    expect((await stat(path.join(local, 'bin', 'busybox'))).mode & 0o777).toBe(0o755);
    const listing = execFileSync('tar', ['-tf', tar], { encoding: 'utf8' }).split('\n');
    expect(listing).toContain('hello.txt');
    expect(listing).toContain('bin/busybox');
    // umoci unpacks the OCI archive's layout
    // the same layout as a directory (tar=false) is what umoci unpacks
    const layout = path.join(out, 'layout');
    await b.build(ctx, { tags: ['localhost/t/out:1'], outputs: [{ type: 'oci', dest: layout, tar: false }] });
    const refName = (JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> }).manifests[0]!.annotations!['org.opencontainers.image.ref.name']!;
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${layout}:${refName}`, path.join(out, 'bundle')], { stdio: 'pipe' });
    expect(await readFile(path.join(out, 'bundle', 'rootfs', 'hello.txt'), 'utf8')).toBe('hello\n');
    expect(result.tags).toEqual(['localhost/t/out:1']);
    expect(await readdir(out)).toContain('bundle');
  });
});
