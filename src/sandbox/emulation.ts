import { execFile } from 'node:child_process';
import { access, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KilnError } from '../errors/index.js';
import { formatPlatform, hostPlatform, normalisePlatform } from '../image/platform.js';
import type { Platform } from '../image/types.js';

/**
 * Which platforms this host can execute: its own, the 32-bit modes its CPU
 * runs natively, and what binfmt_misc hands to an interpreter (QEMU user mode).
 * A handler counts only with the F (fix-binary) flag: the kernel then opens the
 * interpreter when it is registered, so it works inside the build sandbox,
 * whose root file system does not hold it. kiln never registers handlers by
 * itself; `kiln setup emulation` does it when asked.
 */

/** Where binfmt_misc lives; KILN_BINFMT_MISC points kiln at another view (tests use an empty one). */
export function binfmtDir(): string {
  return process.env['KILN_BINFMT_MISC'] || '/proc/sys/fs/binfmt_misc';
}

export interface BinfmtHandler {
  /** The entry's file name, e.g. `qemu-aarch64`. */
  name: string;
  enabled: boolean;
  interpreter: string;
  flags: string;
  /** The architecture its ELF magic selects; undefined for non-ELF handlers (jar, python). */
  architecture?: string;
}

export interface BinfmtState {
  /** False when binfmt_misc is not mounted (no `status` file). */
  mounted: boolean;
  /** False when `status` says disabled: no handler runs then. */
  enabled: boolean;
  handlers: BinfmtHandler[];
}

/** ELF e_machine → OCI architecture, by class (1 = 32-bit, 2 = 64-bit) and byte order (1 = little). */
function elfArchitecture(machine: number, elfClass: number, data: number): string | undefined {
  const le = data === 1;
  switch (machine) {
    case 3: return '386';
    case 62: return 'amd64';
    case 40: return le ? 'arm' : undefined;
    case 183: return 'arm64';
    case 8: return elfClass === 2 ? (le ? 'mips64le' : 'mips64') : (le ? 'mipsle' : 'mips');
    case 21: return le ? 'ppc64le' : 'ppc64';
    case 22: return elfClass === 2 ? 's390x' : undefined;
    case 243: return elfClass === 2 ? 'riscv64' : undefined;
    case 258: return 'loong64';
    default: return undefined;
  }
}

/** The architecture an ELF magic (as binfmt_misc prints it: hex, offset 0) selects. */
export function architectureOfMagic(magicHex: string, offset = 0): string | undefined {
  if (offset !== 0 || !/^[0-9a-f]+$/i.test(magicHex)) return undefined;
  const b = Buffer.from(magicHex, 'hex');
  if (b.length < 20 || b.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const data = b[5]!;
  const machine = data === 1 ? b.readUInt16LE(18) : b.readUInt16BE(18);
  return elfArchitecture(machine, b[4]!, data);
}

/** Parses one binfmt_misc entry file (`enabled`, `interpreter …`, `flags: PF`, `offset 0`, `magic …`). */
export function parseBinfmtEntry(name: string, text: string): BinfmtHandler {
  const lines = text.split('\n').map((l) => l.trim());
  const field = (k: string) => lines.find((l) => l.startsWith(`${k} `) || l.startsWith(`${k}:`))?.slice(k.length + 1).trim();
  const magic = field('magic');
  const offset = Number(field('offset') ?? '0');
  const architecture = magic ? architectureOfMagic(magic, offset) : undefined;
  return {
    name,
    enabled: lines[0] === 'enabled',
    interpreter: field('interpreter') ?? '',
    flags: field('flags') ?? '',
    ...(architecture ? { architecture } : {}),
  };
}

export async function readBinfmt(dir = binfmtDir()): Promise<BinfmtState> {
  let status: string;
  try {
    status = (await readFile(join(dir, 'status'), 'utf8')).trim();
  } catch {
    return { mounted: false, enabled: false, handlers: [] };
  }
  const handlers: BinfmtHandler[] = [];
  for (const name of (await readdir(dir)).sort()) {
    if (name === 'status' || name === 'register') continue;
    // an entry can vanish between readdir and read (update-binfmts --disable): skip it
    const text = await readFile(join(dir, name), 'utf8').catch(() => undefined);
    if (text !== undefined) handlers.push(parseBinfmtEntry(name, text));
  }
  return { mounted: true, enabled: status === 'enabled', handlers };
}

/** x86-64 micro-architecture levels and the CPU flags each needs (the psABI's list). */
const AMD64_LEVELS: Array<[string, string[]]> = [
  ['v2', ['cx16', 'lahf_lm', 'popcnt', 'sse4_1', 'sse4_2', 'ssse3']],
  ['v3', ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave']],
  ['v4', ['avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl']],
];

async function cpuFlags(): Promise<Set<string>> {
  const text = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const line = text.split('\n').find((l) => /^(flags|Features)\s*:/.test(l)) ?? '';
  return new Set(line.replace(/^[^:]*:/, '').trim().split(/\s+/));
}

/**
 * What the CPU runs without emulation: the host platform, its variants the CPU
 * supports (amd64/v2…v4 from /proc/cpuinfo), and the 32-bit mode of the
 * architecture (386 on amd64, arm/v7 and arm/v6 on arm64, as containerd assumes).
 */
export async function nativePlatforms(host: Platform = hostPlatform()): Promise<Platform[]> {
  const out: Platform[] = [normalisePlatform(host)];
  if (host.os !== 'linux') return out;
  if (host.architecture === 'amd64') {
    const flags = await cpuFlags();
    for (const [level, need] of AMD64_LEVELS) {
      if (!need.every((f) => flags.has(f))) break;
      out.push({ os: 'linux', architecture: 'amd64', variant: level });
    }
    out.push({ os: 'linux', architecture: '386' });
  } else if (host.architecture === 'arm64') {
    out.push({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' });
  }
  return out;
}

/** The name of QEMU's user-mode emulator for an architecture (qemu-<name>), as Debian's qemu-user-static ships it. */
export function qemuName(architecture: string): string | undefined {
  const names: Record<string, string> = {
    arm64: 'aarch64', arm: 'arm', amd64: 'x86_64', '386': 'i386', ppc64le: 'ppc64le', ppc64: 'ppc64', s390x: 's390x',
    riscv64: 'riscv64', mips64le: 'mips64el', mips64: 'mips64', mipsle: 'mipsel', mips: 'mips', loong64: 'loongarch64',
  };
  return names[architecture];
}

export type Execution = { how: 'native' } | { how: 'emulated'; handler: BinfmtHandler };

/** How this host runs binaries of `platform`, or why it cannot (the error says what to install and enable). */
export async function executionFor(platform: Platform, opts: { host?: Platform; binfmt?: string } = {}): Promise<Execution> {
  const want = normalisePlatform(platform);
  const native = await nativePlatforms(opts.host ?? hostPlatform());
  if (native.some((n) => formatPlatform(n) === formatPlatform(want))) return { how: 'native' };
  const name = formatPlatform(want);
  const qemu = qemuName(want.architecture);
  if (want.os !== 'linux' || !qemu) {
    throw new KilnError('UNSUPPORTED', `RUN for ${name}: kiln runs Linux binaries only, natively or under QEMU user-mode emulation, and knows no emulator for ${want.os}/${want.architecture}`);
  }
  const enable = `update-binfmts --enable qemu-${qemu}`;
  const install = `install qemu-user-static and binfmt-support (Debian), then run ${enable} (or: kiln setup emulation --platform ${name})`;
  const state = await readBinfmt(opts.binfmt ?? binfmtDir());
  if (!state.mounted) {
    throw new KilnError('UNSUPPORTED', `RUN for ${name} needs QEMU emulation, but binfmt_misc is not mounted at ${opts.binfmt ?? binfmtDir()}: mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc, ${install}`);
  }
  if (!state.enabled) {
    throw new KilnError('UNSUPPORTED', `RUN for ${name} needs QEMU emulation, but binfmt_misc is disabled: echo 1 > /proc/sys/fs/binfmt_misc/status, then ${enable}`);
  }
  const candidates = state.handlers.filter((h) => h.architecture === want.architecture);
  const usable = candidates.find((h) => h.enabled && h.flags.includes('F'));
  if (usable) return { how: 'emulated', handler: usable };
  const disabled = candidates.find((h) => !h.enabled);
  if (disabled) throw new KilnError('UNSUPPORTED', `RUN for ${name} needs QEMU emulation, and the binfmt_misc handler ${disabled.name} is disabled: ${enable}`);
  const unfixed = candidates[0];
  if (unfixed) {
    throw new KilnError('UNSUPPORTED', `RUN for ${name} needs QEMU emulation, and the binfmt_misc handler ${unfixed.name} lacks the F (fix-binary) flag, so its interpreter ${unfixed.interpreter} cannot be found inside the build sandbox: ${install}`);
  }
  throw new KilnError('UNSUPPORTED', `RUN for ${name} needs QEMU emulation, and no binfmt_misc handler runs ${want.architecture} binaries on this host: ${install}`);
}

/** Every platform this host runs: native ones and the architectures of usable handlers. */
export async function executablePlatforms(dir = binfmtDir()): Promise<Platform[]> {
  const out = await nativePlatforms();
  const state = await readBinfmt(dir);
  if (!state.mounted || !state.enabled) return out;
  const seen = new Set(out.map((p) => p.architecture));
  for (const h of state.handlers) {
    if (!h.architecture || !h.enabled || !h.flags.includes('F') || seen.has(h.architecture)) continue;
    seen.add(h.architecture);
    out.push(normalisePlatform({ os: 'linux', architecture: h.architecture }));
  }
  return out;
}

export interface SetupStep {
  platform: string;
  action: 'native' | 'already-enabled' | 'enabled';
  handler?: string;
}

/**
 * `kiln setup emulation`: mounts binfmt_misc when absent and enables Debian's
 * qemu-user-static handler (registered with F) for each platform, through
 * update-binfmts. Runs only when the user asks for it.
 */
export async function setupEmulation(platforms: Platform[], opts: { dir?: string } = {}): Promise<SetupStep[]> {
  const dir = opts.dir ?? binfmtDir();
  const run = promisify(execFile);
  const state = await readBinfmt(dir);
  if (!state.mounted) {
    try {
      await run('mount', ['-t', 'binfmt_misc', 'binfmt_misc', dir]);
    } catch (e) {
      throw new KilnError('UNSUPPORTED', `cannot mount binfmt_misc at ${dir}: ${(e as Error).message.split('\n')[0]} (run as root)`);
    }
  }
  const out: SetupStep[] = [];
  for (const p of platforms) {
    const name = formatPlatform(p);
    const before = await executionFor(p, { binfmt: dir }).catch(() => undefined);
    if (before) {
      out.push({ platform: name, action: before.how === 'native' ? 'native' : 'already-enabled', ...(before.how === 'emulated' ? { handler: before.handler.name } : {}) });
      continue;
    }
    const qemu = qemuName(normalisePlatform(p).architecture);
    if (!qemu) throw new KilnError('UNSUPPORTED', `no QEMU user-mode emulator for ${name}`);
    const definition = `/usr/share/binfmts/qemu-${qemu}`;
    const haveDefinition = await access(definition).then(() => true, () => false);
    if (!haveDefinition) {
      throw new KilnError('UNSUPPORTED', `${definition} not found: install qemu-user-static and binfmt-support (Debian: apt-get install qemu-user-static binfmt-support)`);
    }
    try {
      await run('update-binfmts', ['--enable', `qemu-${qemu}`]);
    } catch (e) {
      throw new KilnError('UNSUPPORTED', `update-binfmts --enable qemu-${qemu} failed: ${(e as Error).message.split('\n')[0]}`);
    }
    const after = await executionFor(p, { binfmt: dir });
    out.push({ platform: name, action: 'enabled', ...(after.how === 'emulated' ? { handler: after.handler.name } : {}) });
  }
  return out;
}
