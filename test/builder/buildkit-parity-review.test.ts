/**
 * Behaviours where kiln differed from BuildKit until 2026-12-07, each built through kiln's build
 * path and read back from the image, with the BuildKit source that decides it.
 */
import { chmodSync, utimesSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bench, BASE, type Bench } from './helpers.js';

let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

async function stat(ref: string, p: string): Promise<{ mode: string; uid: number; gid: number; mtime: number; type: string } | undefined> {
  const n = (await b.fs(ref)).lstat(p.replace(/^\//, ''));
  return n && { mode: n.mode.toString(8).padStart(4, '0'), uid: n.uid, gid: n.gid, mtime: Math.floor(n.mtime), type: n.type };
}

describe('variables', () => {
  it('an ARG declared after an ENV of its name is what expansion and RUN see; the image keeps the ENV (dispatchArg: state.AddEnv)', async () => {
    const ctx = await b.context({
      Dockerfile: [
        `FROM ${BASE} AS base`,
        'ENV X=base',
        'FROM base',
        'ARG X=arg',
        'RUN echo "$X" > /run-x',
        'ENV Y=$X',
        'ARG Z=argz',
        'ENV Z=envz',
        'RUN echo "$Z" > /run-z',
        'ARG X',
        'RUN echo "$X" > /run-x2',
        '',
      ].join('\n'),
    });
    const { result } = await b.build(ctx, { tags: ['localhost/parity/arg-env:1'] });
    expect(await b.read('localhost/parity/arg-env:1', '/run-x')).toBe('arg\n');
    // an ENV after the ARG wins again; an ARG without a value changes nothing
    expect(await b.read('localhost/parity/arg-env:1', '/run-z')).toBe('envz\n');
    expect(await b.read('localhost/parity/arg-env:1', '/run-x2')).toBe('arg\n');
    const env = result.config.config?.Env ?? [];
    expect(env).toContain('X=base');
    expect(env).toContain('Y=arg');
    expect(env).toContain('Z=envz');
  });
});

describe('RUN --mount targets (convert_runmount.go)', () => {
  it('a relative target is under WORKDIR, and the default cache id is the cleaned target', async () => {
    const ctx = await b.context({
      Dockerfile: [
        `FROM ${BASE}`,
        'WORKDIR /w',
        "RUN --mount=type=cache,target=rel sh -c 'echo cached > /w/rel/x'",
        'RUN --mount=type=cache,target=rel cat /w/rel/x > /from-rel',
        'RUN --mount=type=bind,target=ctx cat /w/ctx/f.txt > /from-bind',
        'RUN --mount=type=tmpfs,target=tmp sh -c "grep -c \' /w/tmp \' /proc/mounts > /tmpfs-at"',
        "RUN --mount=type=cache,target=/c/ sh -c 'echo one > /c/f'",
        'RUN --mount=type=cache,target=/c cat /c/f > /same-cache',
        '',
      ].join('\n'),
      'f.txt': 'context\n',
    });
    await b.build(ctx, { tags: ['localhost/parity/mounts:1'] });
    const r = (p: string): Promise<string> => b.read('localhost/parity/mounts:1', p);
    expect(await r('/from-rel')).toBe('cached\n');
    expect(await r('/from-bind')).toBe('context\n');
    expect(await r('/tmpfs-at')).toBe('1\n');
    expect(await r('/same-cache')).toBe('one\n');
    // the mounts' writes stayed out of the layers
    expect(await stat('localhost/parity/mounts:1', '/w/rel/x')).toBeUndefined();
    expect(await stat('localhost/parity/mounts:1', '/rel')).toBeUndefined();
  });
});

describe('COPY', () => {
  it('a wildcard that matches nothing copies nothing and makes no destination (AllowEmptyWildcard)', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY requirements.* /app/\nCOPY f.txt nomatch* /d/\n`, 'f.txt': 'f' });
    await b.build(ctx, { tags: ['localhost/parity/empty-wild:1'] });
    expect(await stat('localhost/parity/empty-wild:1', '/app')).toBeUndefined();
    expect(await b.read('localhost/parity/empty-wild:1', '/d/f.txt')).toBe('f');
    // a name without wildcards must still exist
    const missing = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY requirements.txt /app/\n` });
    await expect(b.build(missing)).rejects.toThrow(/requirements\.txt/);
  });

  it('COPY --link --chmod is an ordinary copy onto the stage (convert_copy.go: link && chmod == "")', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN mkdir -m 1777 /shared\nCOPY --link --chmod=600 f /shared\nCOPY --link --chmod=600 f /tmp/sub/\n`, f: 'f' });
    await b.build(ctx, { tags: ['localhost/parity/link-chmod:1'] });
    // into the existing directory, which keeps its mode, rather than a file replacing it
    expect(await stat('localhost/parity/link-chmod:1', '/shared')).toMatchObject({ type: 'directory', mode: '1777' });
    expect(await stat('localhost/parity/link-chmod:1', '/shared/f')).toMatchObject({ type: 'file', mode: '0600' });
    expect(await stat('localhost/parity/link-chmod:1', '/tmp')).toMatchObject({ mode: '1777' });
  });

  it('directories below the copied one take the source metadata over the image; the destination keeps its own (fsutil copyDirectory)', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}\nRUN mkdir -p /etc/app && chmod 700 /etc/app && chown 5:5 /etc/app\nCOPY src/ /\n`,
      'src/tmp/t.txt': 't',
      'src/etc/app/conf': 'c',
    });
    chmodSync(path.join(ctx, 'src', 'tmp'), 0o755);
    chmodSync(path.join(ctx, 'src', 'etc'), 0o750);
    chmodSync(path.join(ctx, 'src', 'etc', 'app'), 0o711);
    utimesSync(path.join(ctx, 'src', 'etc', 'app'), 1_500_000_000, 1_500_000_000);
    await b.build(ctx, { tags: ['localhost/parity/nested-dirs:1'] });
    const s = (p: string): ReturnType<typeof stat> => stat('localhost/parity/nested-dirs:1', p);
    expect(await s('/tmp')).toMatchObject({ mode: '0755', uid: 0, gid: 0 });
    expect(await s('/etc')).toMatchObject({ mode: '0750', uid: 0, gid: 0 });
    expect(await s('/etc/app')).toMatchObject({ mode: '0711', uid: 0, gid: 0, mtime: 1_500_000_000 });
    // the destination itself (here /) and the parents of a copied file keep the image's
    const into = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY t.txt /tmp/x/\n`, 't.txt': 't' });
    await b.build(into, { tags: ['localhost/parity/nested-dirs:2'] });
    expect(await stat('localhost/parity/nested-dirs:2', '/tmp')).toMatchObject({ mode: '1777' });
  });
});

describe('history (dockerfile2llb commitToHistory)', () => {
  it('created_by reads as BuildKit writes it, instruction by instruction', async () => {
    const ctx = await b.context({
      Dockerfile: [
        `FROM ${BASE} AS base`,
        'COPY foo /foo2',
        `FROM ${BASE}`,
        'ARG foo=bar',
        'ARG bar=123',
        'ARG foo=bar2',
        'ARG empty',
        'COPY --from=base --chmod=644 /foo2 foo3',
        'COPY --link foo /linked',
        'WORKDIR /w',
        'WORKDIR sub',
        'RUN true',
        'ENV bar=456',
        'RUN true',
        'EXPOSE 2375 5000 1234/udp 8000-8001',
        'SHELL ["/bin/sh", "-c"]',
        'VOLUME /v1 /v2',
        'HEALTHCHECK --interval=1s --timeout=90s --retries=3 CMD exit 0',
        'ONBUILD RUN echo child',
        'USER app',
        'STOPSIGNAL SIGTERM',
        'CMD echo "hi"',
        'ENTRYPOINT ["a", "b"]',
        '',
      ].join('\n'),
      foo: 'foo',
    });
    const { result } = await b.build(ctx, { tags: ['localhost/parity/history:1'] });
    const base = (await (await b.store()).getImage(BASE)).config.history?.length ?? 0;
    expect(result.config.history!.slice(base).map((h) => h.created_by)).toEqual([
      'ARG foo=bar',
      'ARG bar=123',
      'ARG foo=bar2',
      'ARG empty',
      'COPY --chmod=644 /foo2 foo3 # buildkit',
      'COPY foo /linked # buildkit',
      'WORKDIR /w',
      'WORKDIR /w/sub',
      'RUN |3 foo=bar2 bar=123 empty= /bin/sh -c true # buildkit',
      'ENV bar=456',
      'RUN |3 foo=bar2 bar=456 empty= /bin/sh -c true # buildkit',
      'EXPOSE [2375/tcp 5000/tcp 1234/udp 8000/tcp 8001/tcp]',
      'SHELL [/bin/sh -c]',
      'VOLUME [/v1 /v2]',
      'HEALTHCHECK {Test:[CMD-SHELL exit 0] Interval:1s Timeout:1m30s StartPeriod:0s StartInterval:0s Retries:3}',
      // ONBUILD writes no history entry
      'USER app',
      'STOPSIGNAL SIGTERM',
      'CMD ["/bin/sh" "-c" "echo \\"hi\\""]',
      'ENTRYPOINT ["a" "b"]',
    ]);
    // ARG entries are metadata: no layer
    expect(result.config.history!.slice(base, base + 4).every((h) => h.empty_layer === true)).toBe(true);
  });
});

describe('RUN heredocs, STOPSIGNAL, EXPOSE (dispatchRun, dispatchStopSignal, convert_expose.go)', () => {
  it('a heredoc RUN runs through the whole SHELL: -e stops the script at its first failing command', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nSHELL ["/bin/sh", "-e", "-c"]\nRUN <<EOF\nfalse\necho reached > /r\nEOF\n` });
    await expect(b.build(ctx)).rejects.toMatchObject({ code: 'RUN_FAILED' });
    // the control: without -e the script goes on
    const lax = await b.context({ Dockerfile: `FROM ${BASE}\nRUN <<EOF\nfalse\necho reached > /r\nEOF\n` });
    await b.build(lax, { tags: ['localhost/parity/heredoc:1'] });
    expect(await b.read('localhost/parity/heredoc:1', '/r')).toBe('reached\n');
  });

  it('STOPSIGNAL takes a signal name or number and refuses anything else', async () => {
    const ok = await b.context({ Dockerfile: `FROM ${BASE}\nSTOPSIGNAL sigusr1\n` });
    expect((await b.build(ok)).result.config.config?.StopSignal).toBe('sigusr1');
    for (const sig of ['FOO', '0', '256']) {
      const bad = await b.context({ Dockerfile: `FROM ${BASE}\nSTOPSIGNAL ${sig}\n` });
      await expect(b.build(bad)).rejects.toThrow(`STOPSIGNAL: invalid signal "${sig}"`);
    }
  });

  it('EXPOSE with a host part records the container port, as BuildKit does', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nEXPOSE 8080:81 127.0.0.1:8081:82/udp [::1]:8082:83 :84 8000-8001:90\n` });
    const { result } = await b.build(ctx);
    expect(Object.keys(result.config.config?.ExposedPorts ?? {}).sort()).toEqual(['81/tcp', '82/udp', '83/tcp', '84/tcp', '90/tcp']);
    const bad = await b.context({ Dockerfile: `FROM ${BASE}\nEXPOSE 300.1.1.1:80:80\n` });
    await expect(b.build(bad)).rejects.toThrow(/invalid EXPOSE port "300\.1\.1\.1:80:80": invalid IP address/);
  });
});

describe('cache keys (LLB: config-only instructions change no operation)', () => {
  it('a changed LABEL, ENV or build arg re-runs only the steps that use it', async () => {
    const df = (label: string, env: string): string => [
      `FROM ${BASE}`,
      `LABEL version=${label}`,
      'ARG V=1',
      `ENV E=${env}`,
      'COPY f /f',
      'WORKDIR /w',
      'RUN cat /f > /copy',
      'RUN echo "$E" > /e',
      '',
    ].join('\n');
    const ctx = await b.context({ Dockerfile: df('1', 'a'), f: 'f' });
    await b.build(ctx, { tags: ['localhost/parity/keys:1'] });
    const rebuild = async (label: string, env: string, buildArgs: Record<string, string> = {}) => {
      await (await import('node:fs/promises')).writeFile(path.join(ctx, 'Dockerfile'), df(label, env));
      const { events, result } = await b.build(ctx, { tags: ['localhost/parity/keys:2'], buildArgs });
      const ran = events.filter((e) => e.type === 'step-done' && /^(COPY|WORKDIR|RUN)/.test(e.step.text)).map((e) => (e as { step: { text: string } }).step.text);
      return { ran, result };
    };
    // a LABEL: nothing runs, the new image has the new label
    const l = await rebuild('2', 'a');
    expect(l.ran).toEqual([]);
    expect(l.result.config.config?.Labels?.version).toBe('2');
    // an ENV: the RUNs run (they see it), the COPY and the WORKDIR stay cached
    expect((await rebuild('2', 'b')).ran).toEqual(['RUN cat /f > /copy', 'RUN echo "$E" > /e']);
    expect(await b.read('localhost/parity/keys:2', '/e')).toBe('b\n');
    // a build arg: likewise only the RUNs
    expect((await rebuild('2', 'b', { V: '2' })).ran).toEqual(['RUN cat /f > /copy', 'RUN echo "$E" > /e']);
  });

  it('what a step depends on still re-runs it: USER for WORKDIR and RUN, SHELL for RUN, WORKDIR for a relative COPY', async () => {
    const df = (user: string, shell: string, wd: string): string => [
      `FROM ${BASE}`,
      `USER ${user}`,
      `SHELL ["${shell}", "-c"]`,
      `WORKDIR ${wd}`,
      'COPY f rel',
      'RUN id -u > /tmp/uid',
      '',
    ].join('\n');
    const ctx = await b.context({ Dockerfile: df('0', '/bin/sh', '/w1'), f: 'f' });
    const ran = async (d: string): Promise<string[]> => {
      await (await import('node:fs/promises')).writeFile(path.join(ctx, 'Dockerfile'), d);
      const { events } = await b.build(ctx, { tags: ['localhost/parity/keys-dep:1'] });
      return events.filter((e) => e.type === 'step-done' && /^(COPY|WORKDIR|RUN)/.test(e.step.text)).map((e) => (e as { step: { text: string } }).step.text);
    };
    await ran(df('0', '/bin/sh', '/w1'));
    expect(await ran(df('0', '/bin/sh', '/w1'))).toEqual([]);
    expect(await ran(df('1000', '/bin/sh', '/w1'))).toEqual(['WORKDIR /w1', 'COPY f rel', 'RUN id -u > /tmp/uid']);
    expect(await b.read('localhost/parity/keys-dep:1', '/tmp/uid')).toBe('1000\n');
    expect(await ran(df('1000', '/bin/ash', '/w1'))).toEqual(['RUN id -u > /tmp/uid']);
    expect(await ran(df('1000', '/bin/ash', '/w2'))).toEqual(['WORKDIR /w2', 'COPY f rel', 'RUN id -u > /tmp/uid']);
    expect(await b.read('localhost/parity/keys-dep:1', '/w2/rel')).toBe('f');
  });
});

describe('image config JSON as BuildKit writes it', () => {
  it('no null or empty Cmd/Entrypoint/OnBuild, CMD marks ArgsEscaped, and a base config\'s unknown keys are dropped', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nONBUILD RUN true\nENTRYPOINT ["/bin/echo"]\n` });
    const { result } = await b.build(ctx, { tags: ['localhost/parity/config:1'] });
    expect(result.config.config).not.toHaveProperty('Cmd');
    expect(result.config.config?.Entrypoint).toEqual(['/bin/echo']);
    const child = await b.context({ Dockerfile: 'FROM localhost/parity/config:1\nCMD []\n' });
    const c = (await b.build(child, { tags: ['localhost/parity/config:2'] })).result.config;
    expect(c.config).not.toHaveProperty('OnBuild');
    expect(c.config).not.toHaveProperty('Cmd');
    expect(c.config?.ArgsEscaped).toBe(true);
    const raw = JSON.stringify(c);
    expect(raw).not.toContain('null');
  });
});
