/**
 * A time as image configs, history entries, provenance and SPDX documents
 * write it: RFC 3339 in UTC to the second (`2024-01-02T03:04:05Z`), without
 * the milliseconds `toISOString` adds, so reproducible builds and the
 * BuildKit-made documents they are compared with agree byte for byte.
 */
export function isoSeconds(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
