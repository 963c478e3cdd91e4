import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { SandboxRequest } from '../../src/sandbox/sandbox.js';
import { makeEnv, type TestEnv, runScript } from '../sandbox/fixtures.js';
import { buildProbe, installProbe, probeResults } from './probe.js';

/**
 * kiln's built-in seccomp profile (Docker's default semantics) from inside
 * a real RUN: what it denies fails, ordinary programs still work. The same
 * probes under `--security=insecure` (no seccomp) succeed, so each denial is
 * the profile's doing and not some other limit.
 */

let env: TestEnv;

beforeAll(() => {
  env = makeEnv();
  installProbe(buildProbe(env.base), env.lower);
});
afterAll(() => env.cleanup());

function sh(script: string, extra: Partial<SandboxRequest> = {}): Promise<{ exitCode: number; out: string }> {
  return runScript(env, 'none', script, extra);
}

const DENIED = [
  'unshare-user', 'unshare-mount', 'unshare-net', 'clone-newuser', 'mount-tmpfs',
  'add_key', 'keyctl', 'request_key', 'personality-norandom', 'userfaultfd', 'bpf', 'socket-vsock', 'socket-alg',
];
const ALLOWED = ['personality-query', 'personality-linux32', 'socket-inet', 'fork'];

describe('seccomp inside RUN', () => {
  test('namespaces, mounts, the keyring, odd personalities, userfaultfd, bpf, AF_VSOCK and AF_ALG are refused with EPERM', async () => {
    const r = await sh(`kiln-probe ${[...DENIED, ...ALLOWED].join(' ')}`);
    const got = probeResults(r.out);
    for (const d of DENIED) expect({ [d]: got[d] }).toEqual({ [d]: 'EPERM' });
    for (const a of ALLOWED) expect({ [a]: got[a] }).toEqual({ [a]: 'ok' });
  });

  test('the same denials hold for a non-root USER', async () => {
    const r = await sh('kiln-probe unshare-user clone-newuser add_key keyctl fork', { user: 'app' });
    expect(probeResults(r.out)).toEqual({ 'unshare-user': 'EPERM', 'clone-newuser': 'EPERM', add_key: 'EPERM', keyctl: 'EPERM', fork: 'ok' });
  });

  test('unshare(1) and mount(8) fail; ordinary programs, pipes, forks and linux32 work', async () => {
    const r = await sh(
      'unshare -U true; echo "userns=$?"; unshare -m true; echo "mntns=$?"; unshare -Ur true; echo "rootmap=$?"; mkdir -p /tmp/m; mount -t tmpfs none /tmp/m; echo "mount=$?"; ' +
        'echo hello | sed s/h/H/ | tr a-z A-Z; (sleep 0.1 & wait); echo "sub=$?"; linux32 uname -m; seq 1 3 | sort -r | head -1; ' +
        'tar -cf /tmp/t.tar -C / etc && tar -tf /tmp/t.tar | grep -c passwd',
    );
    expect(r.out).toMatch(/userns=[1-9]/);
    expect(r.out).toMatch(/mntns=[1-9]/);
    expect(r.out).toMatch(/rootmap=[1-9]/);
    expect(r.out).toMatch(/mount=[1-9]/);
    const lines = r.out.split('\n');
    expect(lines).toContain('HELLO');
    expect(lines).toContain('sub=0');
    expect(lines.some((l) => /^i[3-6]86$|^armv[78]l$/.test(l))).toBe(true);
    expect(lines.at(-2)).toBe('3');
    expect(lines.at(-1)).toBe('1');
  });

  test('control: without seccomp (RUN --security=insecure) the same calls succeed', async () => {
    const r = await sh('kiln-probe unshare-user add_key keyctl personality-norandom socket-inet', { securityInsecure: true });
    expect(probeResults(r.out)).toEqual({ 'unshare-user': 'ok', add_key: 'ok', keyctl: 'ok', 'personality-norandom': 'ok', 'socket-inet': 'ok' });
  });
});
