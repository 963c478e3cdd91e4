import { describe, expect, it } from 'vitest';
import { dumpNodes, goQuote, parseSyntaxTree } from '../../src/frontend/index.js';
import { splitWordsKeepQuotes } from '../../src/frontend/syntax-tree.js';

describe('goQuote (Go strconv.Quote)', () => {
  it('escapes like Go, not like JSON', () => {
    expect(goQuote('a"b\\c')).toBe('"a\\"b\\\\c"');
    expect(goQuote('\x00\x07\b\f\n\r\t\v\x1b\x7f')).toBe('"\\x00\\a\\b\\f\\n\\r\\t\\v\\x1b\\x7f"');
    expect(goQuote('♥ 한국어 é')).toBe('"♥ 한국어 é"');
    expect(goQuote('\u00a0\u2028')).toBe('"\\u00a0\\u2028"');
    expect(goQuote('\u{e0001}')).toBe('"\\U000e0001"');
  });
});

describe('words that keep quotes (ARG/ENV splitting)', () => {
  it('splits on whitespace outside quotes and keeps quotes and escapes', () => {
    expect(splitWordsKeepQuotes("foo bar 'abc xyz'", '\\')).toEqual(['foo', 'bar', "'abc xyz'"]);
    expect(splitWordsKeepQuotes('foo\\ bar', '\\')).toEqual(['foo\\ bar']);
    expect(splitWordsKeepQuotes('a="x \\" y" b', '\\')).toEqual(['a="x \\" y"', 'b']);
    expect(splitWordsKeepQuotes("a='x \\' b", '\\')).toEqual(["a='x \\'", 'b']);
    expect(splitWordsKeepQuotes('end\\', '\\')).toEqual(['end']);
    expect(splitWordsKeepQuotes('a`  b', '`')).toEqual(['a` ', 'b']);
  });
});

describe('syntax tree', () => {
  it('dumps like BuildKit, including unknown keywords and flags', () => {
    const t = parseSyntaxTree('FROM a\nFOO bar\nCOPY --from=x -- a b\nONBUILD RUN ["x"]\nHEALTHCHECK\n', 'Dockerfile');
    expect(dumpNodes(t.nodes)).toBe('(from "a")\n(foo "")\n(copy ["--from=x"] "a" "b")\n(onbuild (run "x"))\n(healthcheck)');
  });
  it('records line spans including swallowed comment and blank lines and heredoc bodies', () => {
    const t = parseSyntaxTree('FROM a\nRUN x \\\n# c\n\n  y\nCOPY <<EOF /f\nbody\nEOF\n', 'Dockerfile');
    expect(t.nodes.map((n) => [n.startLine, n.endLine])).toEqual([[1, 1], [2, 5], [6, 8]]);
  });
});
