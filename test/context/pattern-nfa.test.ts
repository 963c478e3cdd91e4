import { describe, expect, it } from 'vitest';
import { PatternNfa, RegexSyntaxError } from '../../src/context/pattern-nfa.js';
import { PatternMatcher } from '../../src/context/dockerignore.js';

/** The regexp subset moby/patternmatcher emits, with Go regexp's semantics (Docker compiles these with Go). */
describe('PatternNfa', () => {
  const cases: Array<[string, string, boolean]> = [
    ['^[^/]*\\.go', 'main.go', true],
    ['^[^/]*\\.go', 'a/main.go', false],
    ['^(.*/)?x', 'x', true],
    ['^(.*/)?x', 'a/b/x', true],
    ['^(.*/)?x', 'a/bx', false],
    ['^a.*', 'a/b/c', true],
    // Go's `.` stops at a newline, a negated class does not
    ['^a.*', 'a\nb', false],
    ['^a[^/]*', 'a\nb', true],
    // `^` after the start matches only at position 0
    ['^[^/]*^a', 'a', true],
    ['^[^/]*^a', 'ba', false],
    ['^x^a', 'xa', false],
    // POSIX classes inside brackets, as Go reads `[[:alpha:]]`
    ['^[[:alpha:]]', 'q', true],
    ['^[[:alpha:]]', '1', false],
    ['^[[:^digit:]]', 'q', true],
    // brackets that swallowed a `[^/]*` stay what Go's parser makes of them
    ['^[a[^/]*]', 'a]', true],
    ['^[a[^/]*]', '/[^]', true],
    // code points, not UTF-16 units
    ['^[^/]', '☺', true],
    ['^[^/]', '😀', true],
  ];
  for (const [re, text, want] of cases) {
    it(`${JSON.stringify(re)} ~ ${JSON.stringify(text)} = ${want}`, () => expect(new PatternNfa(re).matches(text)).toBe(want));
  }
  it('refuses what Go refuses', () => {
    for (const bad of ['^[z-a]', '^[[:nope:]]', '^\\é', '^[abc']) expect(() => new PatternNfa(bad), bad).toThrow(RegexSyntaxError);
  });
  it('an out-of-order range in .dockerignore is a clear error', () => {
    expect(() => new PatternMatcher(['[a-*]'])).toThrow(/invalid pattern "\[a-\*\]": invalid character class range/);
  });
});
