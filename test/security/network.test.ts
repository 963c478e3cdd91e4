import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SandboxRequest } from '../../src/sandbox/sandbox.js';
import type { KilnError } from '../../src/errors/index.js';
import { leftovers, makeEnv, type TestEnv, runScript } from '../sandbox/fixtures.js';
import { bench, type Bench } from '../builder/helpers.js';
import { buildProbe, installProbe, probeResults } from './probe.js';

/**
 * The RUN network modes against real services of this host, all on loopback:
 * a TCP server on 127.0.0.1 and an abstract unix socket. Nothing here sends a
 * packet off the host: in the default mode the only non-loopback address
 * used is slirp4netns's virtual gateway 10.0.2.2, which exists only inside
 * the RUN's namespace (and is used only after the route to it is checked).
 */

const SECRET = 'kiln-host-loopback-secret-7d21';
const ABSTRACT = `kiln-test-abstract-${process.pid}`;

let env: TestEnv;
let tcp: Server;
let abstract: Server;
let port: number;

beforeAll(async () => {
  env = makeEnv();
  installProbe(buildProbe(env.base), env.lower);
  tcp = createServer((s) => s.end(`${SECRET}\n`));
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
  port = (tcp.address() as { port: number }).port;
  abstract = createServer((s) => s.end());
  await new Promise<void>((r) => abstract.listen(`\0${ABSTRACT}`, r));
});

afterAll(async () => {
  await new Promise((r) => tcp.close(r));
  await new Promise((r) => abstract.close(r));
  env.cleanup();
});

function sh(script: string, extra: Partial<SandboxRequest> = {}): Promise<{ exitCode: number; out: string }> {
  return runScript(env, 'default', script, extra);
}

describe('default network: an isolated namespace with user-mode networking', () => {
  test('has lo and tap0 with a default route through the slirp gateway, and the slirp DNS forwarder in resolv.conf', async () => {
    const r = await sh('ls /sys/class/net | tr "\\n" " "; echo; ip -4 addr show tap0 | grep -o "inet [0-9./]*"; ip route; cat /etc/resolv.conf; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags');
    const lines = r.out.split('\n');
    expect(lines[0]?.trim().split(' ').sort()).toEqual(['lo', 'tap0']);
    expect(r.out).toContain('inet 10.0.2.100/24');
    expect(r.out).toMatch(/^default via 10\.0\.2\.2 dev tap0/m);
    expect(r.out).toMatch(/^nameserver 10\.0\.2\.3$/m);
    expect(r.out.match(/^nameserver /gm)).toHaveLength(1);
    // lo is up (IFF_UP is bit 0 of the flags)
    expect(Number(lines.at(-1)) & 1).toBe(1);
  });

  test("cannot reach a server on the host's 127.0.0.1, neither directly nor through the gateway", async () => {
    const r = await sh(
      `nc -w 3 127.0.0.1 ${port} </dev/null; echo "direct=$?"; ` +
        `if ip route | grep -q "^default via 10.0.2.2 dev tap0"; then nc -w 3 10.0.2.2 ${port} </dev/null; echo "gateway=$?"; else echo gateway=noroute; fi`,
    );
    expect(r.out).not.toContain(SECRET);
    expect(r.out).toMatch(/direct=[1-9]/);
    expect(r.out).toMatch(/gateway=[1-9]/);
  });

  test("cannot connect to the host's abstract unix socket", async () => {
    const r = await sh(`kiln-probe connect-abstract:${ABSTRACT}; grep -c "@${ABSTRACT}" /proc/net/unix`);
    expect(probeResults(r.out)['connect-abstract']).toBe('ECONNREFUSED');
    expect(r.out.split('\n').at(-1)).toBe('0');
  });

  test("the RUN's own loopback works", async () => {
    const r = await sh('(echo inside | nc -l -p 8080 &) ; sleep 0.3; nc -w 2 127.0.0.1 8080 </dev/null');
    expect(r.out).toContain('inside');
  });
});

describe('none and host', () => {
  test('none has only lo, and reaches neither the loopback server nor the abstract socket', async () => {
    const r = await sh(`ls /sys/class/net; nc -w 2 127.0.0.1 ${port} </dev/null; kiln-probe connect-abstract:${ABSTRACT}`, { network: 'none' });
    expect(r.out.split('\n')[0]).toBe('lo');
    expect(r.out.split('\n')[1]).not.toBe('tap0');
    expect(r.out).not.toContain(SECRET);
    expect(probeResults(r.out)['connect-abstract']).toBe('ECONNREFUSED');
  });

  test("host reaches the host's loopback server and abstract socket", async () => {
    const r = await sh(`nc -w 3 127.0.0.1 ${port} </dev/null; kiln-probe connect-abstract:${ABSTRACT}`, { network: 'host' });
    expect(r.out).toContain(SECRET);
    expect(probeResults(r.out)['connect-abstract']).toBe('ok');
  });

  test('no mounts, containers, slirp4netns processes or scratch dirs are left behind', async () => {
    const l = await leftovers(env.root);
    expect(l.mounts).toEqual([]);
    expect(l.tmp).toEqual([]);
    const { execFileSync } = await import('node:child_process');
    const slirps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((a) => a.startsWith('slirp4netns') && a.includes(env.root));
    expect(slirps).toEqual([]);
  });
});

describe('RUN --network=host needs the network.host entitlement', () => {
  let b: Bench;
  beforeAll(async () => {
    b = await bench();
  });
  afterAll(async () => b.cleanup());

  const dockerfile = (): string => `FROM localhost/busybox:latest\nRUN --network=host nc -w 3 127.0.0.1 ${port} </dev/null > /got\n`;

  test('without --allow network.host the build fails at that line, as in BuildKit', async () => {
    const ctx = await b.context({ Dockerfile: dockerfile() });
    const err = (await b.build(ctx, { tags: ['localhost/net:denied'] }).catch((e: unknown) => e)) as KilnError;
    expect(err.code).toBe('USAGE');
    expect(err.format()).toMatch(/^Dockerfile:2: RUN --network=host needs --allow network\.host \(network\.host is not allowed\)$/);
  });

  test('with --allow network.host the RUN reaches the loopback server', async () => {
    const ctx = await b.context({ Dockerfile: dockerfile() });
    await b.build(ctx, { tags: ['localhost/net:allowed'], allow: ['network.host'] });
    expect((await b.read('localhost/net:allowed', 'got')).trim()).toBe(SECRET);
  });

  test('a RUN without --network in a default build does not reach it', async () => {
    const ctx = await b.context({ Dockerfile: `FROM localhost/busybox:latest\nRUN nc -w 3 127.0.0.1 ${port} </dev/null > /got; echo "rc=$?" >> /got\n` });
    await b.build(ctx, { tags: ['localhost/net:default'] });
    const got = await b.read('localhost/net:default', 'got');
    expect(got).not.toContain(SECRET);
    expect(got).toMatch(/rc=[1-9]/);
  });
});

describe('the RUNs of one build share one network namespace', () => {
  let b: Bench;
  beforeAll(async () => {
    b = await bench();
  });
  afterAll(async () => b.cleanup());

  const slirpsOf = async (root: string): Promise<string[]> => {
    const { execFileSync } = await import('node:child_process');
    return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((a) => a.startsWith('slirp4netns') && a.includes(root));
  };

  test("two RUNs (two stages too) see the same namespace, still not the host's loopback; an insecure RUN gets its own; nothing is left running", async () => {
    const probe = (file: string): string =>
      `RUN readlink /proc/self/ns/net > /${file}; ip -4 addr show tap0 | grep -o "inet [0-9./]*" >> /${file}; ` +
      `nc -w 3 127.0.0.1 ${port} </dev/null >> /${file}; echo "direct=$?" >> /${file}; nc -w 3 10.0.2.2 ${port} </dev/null >> /${file}; echo "gateway=$?" >> /${file}`;
    const ctx = await b.context({
      Dockerfile: [
        'FROM localhost/busybox:latest AS other',
        probe('o'),
        'FROM localhost/busybox:latest',
        probe('a'),
        probe('b'),
        'RUN --security=insecure readlink /proc/self/ns/net > /i',
        'COPY --from=other /o /o',
        '',
      ].join('\n'),
    });
    await b.build(ctx, { tags: ['localhost/net:shared'], allow: ['security.insecure'] });
    const read = (f: string): Promise<string> => b.read('localhost/net:shared', f);
    const [a, bb, o, i] = await Promise.all([read('a'), read('b'), read('o'), read('i')]);
    const ns = (s: string): string => s.split('\n')[0]!;
    expect(ns(a)).toMatch(/^net:\[\d+\]$/);
    expect(ns(bb)).toBe(ns(a));
    expect(ns(o)).toBe(ns(a));
    expect(ns(i)).toMatch(/^net:\[\d+\]$/);
    expect(ns(i)).not.toBe(ns(a));
    const { readlinkSync } = await import('node:fs');
    expect(ns(a)).not.toBe(readlinkSync('/proc/self/ns/net'));
    for (const s of [a, bb, o]) {
      expect(s).toContain('inet 10.0.2.100/24');
      expect(s).not.toContain(SECRET);
      expect(s).toMatch(/direct=[1-9]/);
      expect(s).toMatch(/gateway=[1-9]/);
    }
    expect(await slirpsOf(b.root)).toEqual([]);
    const l = await leftovers(b.root);
    expect(l.mounts).toEqual([]);
  });

  // a build through bin/kiln, stopped by `sig` while its second RUN runs (the namespace is up by then)
  const stopped = async (sig: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> => {
    const { spawn } = await import('node:child_process');
    const { KILN_BIN } = await import('../helpers/kiln-cli.js');
    const ctx = await b.context({ Dockerfile: 'FROM localhost/busybox:latest\nARG S\nRUN echo one > /one\nRUN echo started-$S && sleep 60\n' });
    const child = spawn(process.execPath, [KILN_BIN, '--root', b.root, 'build', '--progress', 'plain', '--build-arg', `S=${sig}`, ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes(`started-${sig}`)) resolve();
      });
      closed.then(() => reject(new Error(`kiln exited before the RUN started: ${stderr}`)), reject);
    });
    // the shared slirp4netns is running while the RUN sleeps
    expect(await slirpsOf(b.root)).toHaveLength(1);
    child.kill(sig);
    return { code: await closed, stderr };
  };

  test.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('a build stopped by %s stops the shared slirp4netns and unmounts the namespace', async (sig) => {
    const r = await stopped(sig);
    // an interrupted build exits as a shell reports SIGINT, whichever signal stopped it
    expect(r.code, r.stderr).toBe(130);
    expect(await slirpsOf(b.root)).toEqual([]);
    expect((await leftovers(b.root)).mounts).toEqual([]);
  }, 120_000);

  test('after SIGKILL the shared slirp4netns exits with kiln', async () => {
    await stopped('SIGKILL');
    // it notices its exit fd close asynchronously: wait for that, not for a time
    for (let i = 0; i < 100 && (await slirpsOf(b.root)).length > 0; i++) await new Promise((r) => setTimeout(r, 100));
    expect(await slirpsOf(b.root)).toEqual([]);
    // the next command's sweep unmounts the namespace the killed build left in its scratch dir
    const { runKiln } = await import('../helpers/kiln-cli.js');
    const ctx = await b.context({ Dockerfile: 'FROM localhost/busybox:latest\nRUN echo after > /after\n' });
    const after = await runKiln(['--root', b.root, 'build', '--progress', 'plain', ctx]);
    expect(after.code, after.stderr).toBe(0);
    expect(await slirpsOf(b.root)).toEqual([]);
    expect((await leftovers(b.root)).mounts).toEqual([]);
  }, 120_000);

  test('a failing RUN still stops the shared slirp4netns', async () => {
    const ctx = await b.context({ Dockerfile: 'FROM localhost/busybox:latest\nRUN echo one > /one\nRUN exit 3\n' });
    const err = (await b.build(ctx, { tags: ['localhost/net:fails'] }).catch((e: unknown) => e)) as KilnError;
    expect(err.code).toBe('RUN_FAILED');
    expect(await slirpsOf(b.root)).toEqual([]);
    expect((await leftovers(b.root)).mounts).toEqual([]);
  });
});
