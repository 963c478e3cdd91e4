import { KilnError } from '../errors/index.js';

/**
 * Sizes and durations as users type them for `kiln prune` and the automatic
 * cap. SI suffixes are decimal (`10GB` = 10·10⁹, matching how `kiln images`
 * and `kiln df` print sizes); IEC suffixes are binary (`10GiB`); a bare letter
 * is binary, as in Docker's `-m 512m`.
 */

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
};

/** `10GB`, `10GiB`, `512m`, `1.5g`, `1048576` → bytes (whole, rounded down). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new KilnError('USAGE', `invalid size "${text}" (examples: 10GB, 10GiB, 512m, 1048576)`);
  }
  const n = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n)) throw new KilnError('USAGE', `size "${text}" is too large`);
  return n;
}

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** Go's time.ParseDuration syntax (`24h`, `1h30m`, `90s`) plus `d` and `w` → milliseconds. */
export function parseDuration(text: string): number {
  const s = text.trim();
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h|d|w)/gy;
  let total = 0;
  let at = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    at = re.lastIndex;
  }
  if (!s || at !== s.length) throw new KilnError('USAGE', `invalid duration "${text}" (examples: 24h, 30m, 7d, 1h30m)`);
  return total;
}

/**
 * The automatic cap as configured: `flag` (`--gc-keep-storage`) wins over
 * `KILN_GC_KEEP_STORAGE`; undefined means "use the default cap", 0 disables it.
 */
export function keepStorageSetting(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = flag ?? env['KILN_GC_KEEP_STORAGE'];
  if (v === undefined || v.trim() === '') return undefined;
  return parseSize(v);
}
