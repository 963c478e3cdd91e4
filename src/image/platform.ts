import { KilnError } from '../errors/index.js';
import type { Platform } from './types.js';

/** Node's process.arch → OCI architecture (GOARCH spelling). */
const NODE_ARCH: Record<string, string> = {
  x64: 'amd64',
  arm64: 'arm64',
  arm: 'arm',
  ia32: '386',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** Operating systems containerd knows by name: a lone `linux` means this host's architecture on Linux. */
const KNOWN_OS = new Set(['linux', 'windows', 'darwin', 'freebsd', 'netbsd', 'openbsd', 'solaris', 'illumos', 'aix', 'android', 'ios', 'plan9', 'js', 'wasip1']);

/** `v7` from `7` or `v7`; undefined for empty. */
function vee(variant: string | undefined): string | undefined {
  if (variant === undefined || variant === '') return undefined;
  return /^\d+$/.test(variant) ? `v${variant}` : variant.toLowerCase();
}

/**
 * Architecture and variant as containerd's `normalizeArch` spells them:
 * aarch64 → arm64 (v8 implied), armhf → arm/v7, armel → arm/v6, a bare arm → arm/v7,
 * x86_64 → amd64 (v1 implied), i386/i686 → 386.
 */
function normaliseArch(arch: string, variant: string | undefined): { architecture: string; variant?: string } {
  const a = arch.toLowerCase();
  const v = vee(variant);
  switch (a) {
    case 'i386': case 'i686': case '386':
      return { architecture: '386', ...(v ? { variant: v } : {}) };
    case 'x86_64': case 'x86-64': case 'amd64':
      return v === undefined || v === 'v1' ? { architecture: 'amd64' } : { architecture: 'amd64', variant: v };
    case 'aarch64': case 'arm64':
      return v === undefined || v === 'v8' ? { architecture: 'arm64' } : { architecture: 'arm64', variant: v };
    case 'armhf':
      return { architecture: 'arm', variant: 'v7' };
    case 'armel':
      return { architecture: 'arm', variant: 'v6' };
    case 'arm':
      return { architecture: 'arm', variant: v ?? 'v7' };
    default:
      return v ? { architecture: a, variant: v } : { architecture: a };
  }
}

/** Canonical form: aliases resolved, implied variants dropped (arm64/v8 → arm64) or filled in (arm → arm/v7). */
export function normalisePlatform(p: Platform): Platform {
  const os = p.os.toLowerCase();
  const out: Platform = { os, ...normaliseArch(p.architecture, p.variant) };
  if (p['os.version']) out['os.version'] = p['os.version'];
  if (p['os.features']) out['os.features'] = p['os.features'];
  return out;
}

/**
 * Parses a platform as containerd does and normalises it: `os/arch[/variant]`
 * (`linux/arm64/v8`), a lone architecture (`arm64` → linux/arm64), a lone OS
 * (`linux` → this host's architecture), or `arch/variant` (`arm/v6`).
 */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.length > 3 || parts.some((x) => x === '' || /[^A-Za-z0-9_.-]/.test(x))) {
    throw new KilnError('USAGE', `invalid platform "${s}" (want os/arch[/variant], e.g. linux/arm64/v8)`);
  }
  if (parts.length === 1) {
    const only = parts[0]!.toLowerCase();
    if (KNOWN_OS.has(only)) return normalisePlatform({ ...hostPlatform(), os: only });
    return normalisePlatform({ os: 'linux', architecture: only });
  }
  if (parts.length === 2 && !KNOWN_OS.has(parts[0]!.toLowerCase()) && /^v?\d+$/i.test(parts[1]!)) {
    return normalisePlatform({ os: 'linux', architecture: parts[0]!, variant: parts[1]! });
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalisePlatform(variant ? { os, architecture, variant } : { os, architecture });
}

/** A comma-separated `--platform` list, normalised, duplicates dropped, order kept. */
export function parsePlatformList(s: string | readonly string[]): Platform[] {
  const items = (typeof s === 'string' ? [s] : s).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);
  const out = new Map<string, Platform>();
  for (const item of items) {
    const p = parsePlatform(item);
    out.set(formatPlatform(p), p);
  }
  return [...out.values()];
}

/** `linux/arm64`, `linux/arm/v7`: the one spelling kiln uses for TARGETPLATFORM, events and errors. */
export function formatPlatform(p: Platform): string {
  const n = normalisePlatform(p);
  return n.variant ? `${n.os}/${n.architecture}/${n.variant}` : `${n.os}/${n.architecture}`;
}

/** `linux_arm64`, `linux_arm_v7`: a platform as a directory name (buildx's per-platform output directories). */
export function platformDirName(p: Platform): string {
  return formatPlatform(p).replaceAll('/', '_');
}

/** The platform of the machine kiln runs on (images built here run here). */
export function hostPlatform(): Platform {
  const architecture = NODE_ARCH[process.arch] ?? process.arch;
  const os = process.platform === 'win32' ? 'windows' : process.platform;
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>)['arm_version'];
    return normalisePlatform({ os, architecture, variant: typeof v === 'string' && v ? `v${v}` : 'v7' });
  }
  return { os, architecture };
}

/** True when an image for `have` satisfies a request for `want` (after normalisation; a missing wanted variant matches any). */
export function platformMatches(want: Platform, have: Platform): boolean {
  const w = normalisePlatform(want);
  const h = normalisePlatform(have);
  if (w.os !== h.os || w.architecture !== h.architecture) return false;
  if (w.variant !== undefined && w.variant !== h.variant) return false;
  if (w['os.version'] !== undefined && w['os.version'] !== h['os.version']) return false;
  return true;
}

/**
 * Picks the manifest for `want` out of an index: an exact variant match first,
 * then a descriptor without a variant, skipping attestation manifests (BuildKit's
 * `unknown/unknown` entries). Undefined when nothing fits.
 */
export function selectManifest<D extends { platform?: Platform; annotations?: Record<string, string> }>(manifests: readonly D[], want: Platform): D | undefined {
  const w = normalisePlatform(want);
  const candidates = manifests.filter((m) => m.platform && m.platform.os !== 'unknown' && platformMatches(w, m.platform));
  if (w.variant === undefined) {
    // no variant asked for: prefer the lowest variant the host surely runs (e.g. amd64 over amd64/v3)
    return candidates.find((m) => normalisePlatform(m.platform!).variant === undefined) ?? candidates[0];
  }
  return candidates[0];
}
