import { readFile } from 'node:fs/promises';
import type { OciSeccomp, OciSeccompSyscall } from './oci-spec.js';

/**
 * Docker's default seccomp profile as shipped by Debian's containers-common
 * (the file Podman and Buildah use). It is in Docker's profile format —
 * rules conditional on capabilities and architectures — and is reduced here to
 * the OCI form for one capability set on this machine's architecture, the way
 * moby does it.
 */

export const SECCOMP_PROFILE_PATHS = ['/usr/share/containers/seccomp.json', '/etc/containers/seccomp.json'];

interface DockerSyscallRule {
  names?: string[];
  name?: string;
  action: string;
  errnoRet?: number;
  args?: Array<{ index: number; value: number; valueTwo?: number; op: string }> | null;
  includes?: { caps?: string[]; arches?: string[]; minKernel?: string };
  excludes?: { caps?: string[]; arches?: string[] };
}

interface DockerProfile {
  defaultAction: string;
  defaultErrnoRet?: number;
  archMap?: Array<{ architecture: string; subArchitectures?: string[] | null }>;
  syscalls?: DockerSyscallRule[];
}

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };
const SCMP_ARCH: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', arm64: 'SCMP_ARCH_AARCH64', '386': 'SCMP_ARCH_X86', arm: 'SCMP_ARCH_ARM', s390x: 'SCMP_ARCH_S390X', ppc64le: 'SCMP_ARCH_PPC64LE', riscv64: 'SCMP_ARCH_RISCV64',
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

export function toOciSeccomp(profile: DockerProfile, caps: readonly string[], kernelRelease: string, nodeArch: string = process.arch): OciSeccomp {
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
    const names = r.names ?? (r.name ? [r.name] : []);
    if (names.length === 0) continue;
    const rule: OciSeccompSyscall = { names, action: r.action };
    if (r.errnoRet !== undefined) rule.errnoRet = r.errnoRet;
    if (r.args && r.args.length > 0) rule.args = r.args;
    syscalls.push(rule);
  }
  const out: OciSeccomp = { defaultAction: profile.defaultAction, syscalls };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (architectures.length > 0) out.architectures = architectures;
  return out;
}

let cachedProfile: { path: string; profile: DockerProfile } | null | undefined;

/** The host's default profile, or undefined when containers-common is not installed. */
export async function loadDefaultSeccomp(caps: readonly string[], kernelRelease: string): Promise<OciSeccomp | undefined> {
  if (cachedProfile === undefined) {
    cachedProfile = null;
    for (const path of SECCOMP_PROFILE_PATHS) {
      try {
        cachedProfile = { path, profile: JSON.parse(await readFile(path, 'utf8')) as DockerProfile };
        break;
      } catch {
        // try the next location
      }
    }
  }
  return cachedProfile ? toOciSeccomp(cachedProfile.profile, caps, kernelRelease) : undefined;
}
