/**
 * The order entries appear in a layer tar: component by component, each
 * component compared as UTF-8 bytes. It is the order a depth-first walk with
 * sorted directory listings produces (a parent before its children, "a/x"
 * before "a-b"), which is what Docker and BuildKit emit, so walkers can stream
 * entries without collecting and sorting the whole tree.
 */
export function comparePaths(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const ca = a.charCodeAt(i);
    const cb = b.charCodeAt(i);
    if (ca === cb) continue;
    if (ca === 0x2f) return -1;
    if (cb === 0x2f) return 1;
    // UTF-16 code-unit order differs from UTF-8 byte order only around surrogates.
    if (ca >= 0xd800 || cb >= 0xd800) return Buffer.compare(Buffer.from(a.slice(i)), Buffer.from(b.slice(i)));
    return ca < cb ? -1 : 1;
  }
  return a.length - b.length;
}

/** Byte order of single names (one directory's listing). */
export function compareNames(a: string, b: string): number {
  return comparePaths(a, b);
}
