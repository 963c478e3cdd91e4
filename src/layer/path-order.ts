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
    // UTF-16 code-unit order differs from UTF-8 byte order only around surrogates. Two characters
    // that share their high surrogate differ first at the low one: compare from the pair's start, as
    // a lone low surrogate would encode as U+FFFD and make both names equal.
    if (ca >= 0xd800 || cb >= 0xd800) {
      const from = i > 0 && ca >= 0xdc00 && ca <= 0xdfff && a.charCodeAt(i - 1) >= 0xd800 && a.charCodeAt(i - 1) <= 0xdbff ? i - 1 : i;
      return Buffer.compare(Buffer.from(a.slice(from)), Buffer.from(b.slice(from)));
    }
    return ca < cb ? -1 : 1;
  }
  return a.length - b.length;
}

/** Byte order of single names (one directory's listing). */
export function compareNames(a: string, b: string): number {
  return comparePaths(a, b);
}
