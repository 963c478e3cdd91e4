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

const ARCH_ALIASES: Record<string, string> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armel: 'arm',
  i386: '386',
};

/** The variant a bare architecture implies, as containerd normalises it. */
function normaliseVariant(arch: string, variant: string | undefined): string | undefined {
  if (arch === 'arm64') return variant === undefined || variant === 'v8' ? undefined : variant;
  if (arch === 'arm') return variant ?? 'v7';
  if (arch === 'amd64') return variant === 'v1' ? undefined : variant;
  return variant;
}

/** Canonical form: aliases resolved, implied variants dropped (arm64/v8 → arm64) or filled in (arm → arm/v7). */
export function normalisePlatform(p: Platform): Platform {
  const architecture = ARCH_ALIASES[p.architecture] ?? p.architecture;
  const os = p.os.toLowerCase();
  const variant = normaliseVariant(architecture, p.variant);
  const out: Platform = { os, architecture };
  if (variant) out.variant = variant;
  if (p['os.version']) out['os.version'] = p['os.version'];
  if (p['os.features']) out['os.features'] = p['os.features'];
  return out;
}

/** Parses `os/arch[/variant]` (e.g. `linux/amd64`, `linux/arm64/v8`); the result is normalised. */
export function parsePlatform(s: string): Platform {
  const parts = s.trim().split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === '' || /[^A-Za-z0-9_.-]/.test(x))) {
    throw new KilnError('USAGE', `invalid platform "${s}" (want os/arch[/variant], e.g. linux/arm64/v8)`);
  }
  const [os, architecture, variant] = parts as [string, string, string | undefined];
  return normalisePlatform(variant ? { os, architecture, variant } : { os, architecture });
}

export function formatPlatform(p: Platform): string {
  const n = normalisePlatform(p);
  return n.variant ? `${n.os}/${n.architecture}/${n.variant}` : `${n.os}/${n.architecture}`;
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
