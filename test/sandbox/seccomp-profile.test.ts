import { describe, expect, test } from 'vitest';
import { defaultSeccomp } from '../../src/sandbox/seccomp.js';
import { ALL_CAPABILITIES, boundingCapabilities, DEFAULT_CAPABILITIES } from '../../src/sandbox/docker-defaults.js';
import type { OciSeccomp } from '../../src/sandbox/oci-spec.js';

/** The built-in profile reduced for each architecture and capability set (pure: no runtime). */

const allowed = (p: OciSeccomp): Set<string> => new Set(p.syscalls.filter((s) => s.action === 'SCMP_ACT_ALLOW' && !s.args).flatMap((s) => s.names));
const ruleFor = (p: OciSeccomp, name: string) => p.syscalls.filter((s) => s.names.includes(name));

describe('built-in seccomp profile', () => {
  test('x86_64: its own and the i386 ABI (x32 left out), x86-only calls in, arm-only calls out', () => {
    const p = defaultSeccomp(DEFAULT_CAPABILITIES, '6.1.0', 'x64');
    expect(p.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(p.defaultErrnoRet).toBe(1);
    expect(p.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
    const a = allowed(p);
    for (const n of ['read', 'openat', 'execve', 'arch_prctl', 'modify_ldt', 'chroot', 'ptrace']) expect(a.has(n), n).toBe(true);
    for (const n of ['set_tls', 'cacheflush', 'riscv_flush_icache']) expect(a.has(n), n).toBe(false);
  });

  test('aarch64: its own and the arm ABI, arm-only calls in, x86-only calls out', () => {
    const p = defaultSeccomp(DEFAULT_CAPABILITIES, '6.1.0', 'arm64');
    expect(p.architectures).toEqual(['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
    const a = allowed(p);
    for (const n of ['read', 'set_tls', 'cacheflush', 'breakpoint']) expect(a.has(n), n).toBe(true);
    for (const n of ['arch_prctl', 'modify_ldt']) expect(a.has(n), n).toBe(false);
  });

  test("with Docker's default capabilities: no namespaces, mounts, keyring, bpf; clone only without namespace flags; clone3 ENOSYS", () => {
    for (const arch of ['x64', 'arm64']) {
      const p = defaultSeccomp(DEFAULT_CAPABILITIES, '6.1.0', arch);
      const all = new Set(p.syscalls.flatMap((s) => s.names));
      for (const n of ['unshare', 'setns', 'mount', 'umount2', 'fsopen', 'move_mount', 'add_key', 'keyctl', 'request_key', 'bpf', 'userfaultfd', 'kexec_load', 'init_module', 'io_uring_setup', 'perf_event_open', 'settimeofday', 'reboot']) {
        expect(all.has(n), `${arch} ${n}`).toBe(false);
      }
      expect(ruleFor(p, 'clone')).toEqual([{ names: ['clone'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] }]);
      expect(ruleFor(p, 'clone3')).toEqual([{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
      expect(ruleFor(p, 'personality').map((r) => r.args?.[0]?.value).sort((x, y) => (x ?? 0) - (y ?? 0))).toEqual([0, 8, 0x20000, 0x20008, 0xffffffff]);
      expect(ruleFor(p, 'socket').map((r) => `${r.args?.[0]?.op}:${r.args?.[0]?.value}`)).toEqual(['SCMP_CMP_LT:38', 'SCMP_CMP_EQ:39', 'SCMP_CMP_GT:40']);
    }
  });

  test('CAP_SYS_ADMIN unlocks namespaces and mounts; ptrace waits for kernel 4.8', () => {
    const p = defaultSeccomp([...DEFAULT_CAPABILITIES, 'CAP_SYS_ADMIN'], '6.1.0', 'x64');
    const a = allowed(p);
    for (const n of ['unshare', 'setns', 'mount', 'clone', 'clone3', 'bpf']) expect(a.has(n), n).toBe(true);
    expect(ruleFor(p, 'clone3').every((r) => r.action === 'SCMP_ACT_ALLOW')).toBe(true);
    expect(allowed(defaultSeccomp(DEFAULT_CAPABILITIES, '4.4.0', 'x64')).has('ptrace')).toBe(false);
  });

  test('insecure grants the bounding set, in kernel numbering', () => {
    expect(ALL_CAPABILITIES[24]).toBe('CAP_SYS_RESOURCE');
    const caps = boundingCapabilities('Name:\tx\nCapBnd:\t000001fffeffffff\n');
    expect(caps).toHaveLength(40);
    expect(caps).not.toContain('CAP_SYS_RESOURCE');
    expect(caps).toContain('CAP_SYS_ADMIN');
  });
});
