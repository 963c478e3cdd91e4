import type { OciSeccomp, OciSeccompSyscall } from './oci-spec.js';
import { DEFAULT_SECCOMP_PROFILE, type SeccompProfile } from './seccomp-profile.js';

/**
 * Reduces kiln's built-in profile (seccomp-profile.ts, Docker's format with
 * rules conditional on capabilities, architectures and kernel versions) to
 * the OCI form for one capability set on one architecture, the way moby does
 * it. Nothing is read from the host: the profile a RUN gets does not depend
 * on which files the machine happens to have.
 */

/** Node's process.arch → the Go names the profile's conditions use. */
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: 'x86', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };
const SCMP_ARCH: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64', x86: 'SCMP_ARCH_X86', arm: 'SCMP_ARCH_ARM', s390x: 'SCMP_ARCH_S390X', ppc64le: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64',
};

function kernelAtLeast(min: string, release: string): boolean {
  const a = min.split('.').map(Number);
  const b = release.split(/[.-]/).map(Number);
  for (let i = 0; i < 2; i++) {
    const x = b[i] ?? 0;
    const y = a[i] ?? 0;
    if (x !== y) return x > y;
  }
  return true;
}

/**
 * The x32 ABI is left out of the filter: every architecture costs runc a
 * full copy of the BPF program (measured: ~35 vs ~50 ms per `RUN true` here),
 * x32 is disabled in distribution kernels, and a syscall from an architecture
 * the filter does not list is refused — stricter, never looser. i386 stays.
 */
const DROPPED_SUBARCHES = new Set(['SCMP_ARCH_X32']);

/** A profile in Docker's format; `SeccompProfile` is kiln's, the looser shape lets tests feed small ones. */
type ProfileInput = Pick<SeccompProfile, 'defaultAction'> & {
  defaultErrnoRet?: number;
  archMap?: Array<{ architecture: string; subArchitectures?: string[] | null }>;
  syscalls?: Array<{
    names: string[];
    action: string;
    errnoRet?: number;
    args?: OciSeccompSyscall['args'];
    includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
    excludes?: { caps?: string[]; arches?: string[] };
  }>;
};

export function toOciSeccomp(profile: ProfileInput, caps: readonly string[], kernelRelease: string, nodeArch: string = process.arch): OciSeccomp {
  const goarch = GOARCH[nodeArch] ?? nodeArch;
  const scmp = SCMP_ARCH[goarch];
  const architectures: string[] = [];
  for (const a of profile.archMap ?? []) {
    if (a.architecture === scmp) architectures.push(a.architecture, ...(a.subArchitectures ?? []).filter((sub) => !DROPPED_SUBARCHES.has(sub)));
  }
  const syscalls: OciSeccompSyscall[] = [];
  for (const r of profile.syscalls ?? []) {
    const inc = r.includes ?? {};
    const exc = r.excludes ?? {};
    if (inc.arches?.length && !inc.arches.includes(goarch)) continue;
    if (exc.arches?.length && exc.arches.includes(goarch)) continue;
    if (inc.caps?.length && !inc.caps.every((c) => caps.includes(c))) continue;
    if (exc.caps?.length && exc.caps.some((c) => caps.includes(c))) continue;
    if (inc.minKernel && !kernelAtLeast(inc.minKernel, kernelRelease)) continue;
    if (r.names.length === 0) continue;
    const rule: OciSeccompSyscall = { names: [...r.names], action: r.action };
    if (r.errnoRet !== undefined) rule.errnoRet = r.errnoRet;
    if (r.args && r.args.length > 0) rule.args = r.args.map((a) => ({ ...a }));
    syscalls.push(rule);
  }
  const out: OciSeccomp = { defaultAction: profile.defaultAction, syscalls };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (architectures.length > 0) out.architectures = architectures;
  return out;
}

const reduced = new Map<string, OciSeccomp>();

/** kiln's default profile for `caps` on this machine (memoised: the same few capability sets recur on every RUN). */
export function defaultSeccomp(caps: readonly string[], kernelRelease: string, nodeArch: string = process.arch): OciSeccomp {
  const key = `${nodeArch}\0${kernelRelease}\0${caps.join(',')}`;
  let o = reduced.get(key);
  if (!o) {
    o = toOciSeccomp(DEFAULT_SECCOMP_PROFILE, caps, kernelRelease, nodeArch);
    reduced.set(key, o);
  }
  return o;
}
