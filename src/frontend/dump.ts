/**
 * BuildKit's `Node.Dump()` rendering of a syntax tree, used to compare kiln's
 * parse with BuildKit's golden files (and handy for debugging).
 */
import type { SyntaxNode } from './syntax-tree.js';

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** Go's strconv.Quote for a (well-formed) JS string. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    switch (c) {
      case 0x22: out += '\\"'; continue;
      case 0x5c: out += '\\\\'; continue;
      case 0x07: out += '\\a'; continue;
      case 0x08: out += '\\b'; continue;
      case 0x0c: out += '\\f'; continue;
      case 0x0a: out += '\\n'; continue;
      case 0x0d: out += '\\r'; continue;
      case 0x09: out += '\\t'; continue;
      case 0x0b: out += '\\v'; continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      // A lone surrogate stands for an invalid UTF-8 sequence; Go prints U+FFFD for it.
      out += '\\ufffd';
      continue;
    }
    if (c < 0x20 || c === 0x7f) {
      out += '\\x' + c.toString(16).padStart(2, '0');
      continue;
    }
    if (PRINTABLE.test(ch)) {
      out += ch;
      continue;
    }
    out += c > 0xffff ? '\\U' + c.toString(16).padStart(8, '0') : '\\u' + c.toString(16).padStart(4, '0');
  }
  return out + '"';
}

export function dumpNode(node: SyntaxNode): string {
  let s = node.keyword.toLowerCase();
  if (node.flags.length > 0) s += ' [' + node.flags.map(goQuote).join(' ') + ']';
  for (const a of node.args) s += ' ' + (typeof a === 'string' ? goQuote(a) : '(' + dumpNode(a) + ')');
  return s;
}

/** The whole tree as BuildKit dumps it (no trailing newline). */
export function dumpNodes(nodes: SyntaxNode[]): string {
  return nodes.map((n) => '(' + dumpNode(n) + ')').join('\n').trim();
}
