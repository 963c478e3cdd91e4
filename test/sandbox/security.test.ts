import { hostname } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SandboxRequest } from '../../src/sandbox/sandbox.js';
import { leftovers, makeEnv, type TestEnv, runScript } from './fixtures.js';

/** Every probe a hostile RUN might try, against the real runtime: each must fail. */
let env: TestEnv;

beforeAll(() => {
  env = makeEnv();
});
afterAll(() => env.cleanup());

function sh(script: string, extra: Partial<SandboxRequest> = {}): Promise<{ exitCode: number; out: string }> {
  return runScript(env, 'host', script, extra);
}

describe('security probes inside RUN', () => {
  test('host processes are invisible: the pid namespace holds only the command', async () => {
    const r = await sh('cat /proc/1/comm; ls -d /proc/[0-9]* | wc -l');
    const [comm, count] = r.out.split('\n');
    expect(comm).toBe('sh');
    expect(Number(count)).toBeLessThanOrEqual(3);
  });

  test('mounting fails (no CAP_SYS_ADMIN)', async () => {
    const r = await sh('mkdir -p /tmp/mnt && mount -t tmpfs none /tmp/mnt');
    expect(r.exitCode).not.toBe(0);
    expect(r.out).toMatch(/permission denied|not permitted/i);
  });

  test('/proc/sys and /sys are read-only, masked /proc files read empty', async () => {
    const r = await sh('echo 1 > /proc/sys/vm/drop_caches; echo "sys=$?"; echo x > /sys/kernel/uevent_helper; echo "sysfs=$?"; for f in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug; do [ -e $f ] && echo "$f=$(wc -c < $f)"; done');
    expect(r.out).toMatch(/sys=[1-9]/);
    expect(r.out).toMatch(/sysfs=[1-9]/);
    const masked = r.out.split('\n').filter((l) => l.startsWith('/proc/'));
    expect(masked.length).toBeGreaterThan(0);
    for (const m of masked) expect(m).toMatch(/=0$/);
  });

  test('loading a kernel module fails', async () => {
    const r = await sh('printf "\\177ELFjunk" > /tmp/x.ko; insmod /tmp/x.ko');
    expect(r.exitCode).not.toBe(0);
    expect(r.out).toMatch(/not permitted/i);
  });

  test("the host's hostname cannot be changed", async () => {
    const before = hostname();
    const r = await sh('hostname; hostname kiln-evil-host');
    expect(r.out.split('\n')[0]).toBe('buildkitsandbox');
    expect(r.out).toMatch(/not permitted/i);
    expect(r.exitCode).not.toBe(0);
    expect(hostname()).toBe(before);
  });

  test('files outside the rootfs are unreachable', async () => {
    const marker = 'kiln-host-marker-5f1c';
    writeFileSync(join(env.base, marker), 'host secret');
    const r = await sh(`find / -name ${marker} 2>/dev/null | wc -l; cat ../../../../${marker} 2>&1; cat /proc/1/root/../${marker} 2>&1; echo done`);
    expect(r.out.split('\n')[0]).toBe('0');
    expect(r.out).not.toContain('host secret');
  });

  test("only Docker's default capabilities: SYS_TIME, SYS_ADMIN, NET_ADMIN are denied", async () => {
    const r = await sh('grep CapEff /proc/self/status; date -s 2001-01-01 2>&1 | grep -c "set date"; ip link add dummy0 type dummy 2>/dev/null; echo "net=$?"');
    expect(r.out).toContain('CapEff:\t00000000a80425fb');
    expect(r.out.split('\n')[1]).toBe('1');
    expect(r.out).toMatch(/net=[1-9]/);
  });

  test('a device node outside the allowed set cannot be used even after mknod', async () => {
    const r = await sh('mknod /tmp/sda b 8 0 && head -c 1 /tmp/sda');
    expect(r.exitCode).not.toBe(0);
    expect(r.out).toMatch(/not permitted/i);
  });

  test('network none sees only lo; host sees the host interfaces', async () => {
    const none = await sh('ls /sys/class/net', { network: 'none' });
    expect(none.out.split('\n')).toEqual(['lo']);
    const host = await sh('ls /sys/class/net');
    expect(host.out.split('\n').length).toBeGreaterThan(1);
  });

  test('a non-root USER has no effective capabilities', async () => {
    const r = await sh('grep -E "CapEff|CapBnd" /proc/self/status', { user: 'app' });
    expect(r.out).toContain('CapEff:\t0000000000000000');
    expect(r.out).toContain('CapBnd:\t00000000a80425fb');
  });

  test('nothing is left behind', async () => {
    const l = await leftovers(env.root);
    expect(l.mounts).toEqual([]);
    expect(l.containers.filter((c) => c.includes(`r${process.pid.toString(36)}.`))).toEqual([]);
    expect(l.tmp).toEqual([]);
  });
});
