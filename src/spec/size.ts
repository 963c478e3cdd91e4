import { KilnError } from '../errors/index.js';

/**
 * Every size the program reads or prints goes through this file.
 *
 * Printed sizes are decimal, as Docker prints image and transfer sizes
 * (`1.5kB` = 1500 bytes, `2.3MB`, `1.1GB`); memory is printed in binary units
 * labelled as such (`32.0 MiB`), as `docker stats` does, because memory limits
 * are given in binary units. Parsed sizes follow the suffix: SI suffixes ending
 * in B are decimal (`10GB` = 10·10⁹), IEC suffixes are binary (`10GiB` = 10·2³⁰),
 * and a bare letter is binary, as in Docker's `-m 512m` and `--shm-size 64m`.
 * The one exception is `RUN --mount=type=tmpfs,size=`, which BuildKit reads with
 * Docker's RAMInBytes (every suffix binary: `1GB` = 2³⁰): `parseRamSize` keeps
 * that parity.
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

/** `10GB`, `10GiB`, `512m`, `1.5g`, `1048576` → bytes (whole, rounded down). `what` names the flag in the error. */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new KilnError('USAGE', `invalid ${what} "${text}" (examples: 10GB, 10GiB, 512m, 1048576)`);
  }
  const n = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n)) throw new KilnError('USAGE', `${what} "${text}" is too large`);
  return n;
}

/**
 * Docker's RAMInBytes, as BuildKit reads a tmpfs mount's `size=`: an optional
 * k/m/g/t/p, then optional `i` and `b`, all binary (`64m`, `1g`, `1GB` = 2³⁰).
 * Returns undefined for text that is not such a size (the caller names the flag).
 */
export function parseRamSize(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?) ?([kmgtp])?i?b?$/i.exec(text);
  if (!m) return undefined;
  const units: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
  const n = Math.floor(Number(m[1]) * (m[2] ? units[m[2].toLowerCase()]! : 1));
  return Number.isSafeInteger(n) ? n : undefined;
}

/** 1536 → "1.54kB", 2_300_000 → "2.3MB": decimal units, like `docker images`. */
export function formatSize(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v >= 100 ? 0 : 1)}${units[i]}`;
}

/** Memory and layer totals in binary units, labelled as such: 1536 → "1.50 KiB", 33554432 → "32.0 MiB". */
export function formatBinarySize(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}
