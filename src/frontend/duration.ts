/**
 * Go's time.ParseDuration (HEALTHCHECK flags), returning nanoseconds. Micro is both U+00B5 and
 * U+03BC, as in Go; written as escapes so the bundled CLI stays ASCII (bin/bundle-loader.cjs reads an
 * ASCII bundle as Latin-1, about twice as fast as decoding UTF-8 into a two-byte string).
 */
const UNITS: Record<string, number> = { ns: 1, us: 1e3, '\u00b5s': 1e3, '\u03bcs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

export function parseGoDuration(s: string): number | undefined {
  let rest = s;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest[0] === '-') sign = -1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0;
  const re = /^(\d*\.?\d*)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/;
  while (rest.length > 0) {
    const m = re.exec(rest);
    if (!m || m[1] === '' || m[1] === '.') return undefined;
    total += parseFloat(m[1]!) * UNITS[m[2]!]!;
    rest = rest.slice(m[0].length);
  }
  return sign * Math.round(total);
}
