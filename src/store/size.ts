import { KilnError } from '../errors/index.js';

/** Durations as users type them for `kiln prune`; sizes are parsed by spec/size.ts, the program's one size parser. */
export { parseSize } from '../spec/size.js';
import { parseSize } from '../spec/size.js';

const DURATION_UNITS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  '\u00b5s': 1e-3, // µs, escaped: the bundled CLI stays ASCII (see frontend/duration.ts)
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
  const re = /(\d+(?:\.\d+)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h|d|w)/gy;
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
