import { describe, expect, it } from 'vitest';
import { BadPatternError, cleanPath, goMatch, hasMeta } from '../../src/context/glob.js';

describe('goMatch (Go filepath.Match)', () => {
  const cases: Array<[string, string, boolean]> = [
    ['abc', 'abc', true], ['*', 'abc', true], ['*c', 'abc', true], ['a*', 'a', true], ['a*/b', 'abc/b', true],
    ['a*/b', 'a/c/b', false], ['a*b*c*d*e*/f', 'axbxcxdxe/f', true], ['a*b*c*d*e*/f', 'axbxcxdxexxx/fff', false],
    ['ab[c]', 'abc', true], ['ab[b-d]', 'abc', true], ['ab[e-g]', 'abc', false], ['ab[^c]', 'abc', false],
    ['ab[^e-g]', 'abc', true], ['a\\*b', 'a*b', true], ['a\\*b', 'ab', false], ['a?b', 'a☺b', true],
    ['a[^a]b', 'a☺b', true], ['a???b', 'a☺b', false], ['*x', 'xxx', true], ['a?b', 'a/b', false], ['[\\]a]', ']', true],
    ['[x\\-]', '-', true], ['*.txt', '.hidden.txt', true],
  ];
  for (const [pattern, name, want] of cases) {
    it(`${pattern} ~ ${name} = ${want}`, () => expect(goMatch(pattern, name)).toBe(want));
  }
  it('rejects malformed patterns', () => {
    for (const bad of ['[', 'a[', '[]a]', '[-]', '[x-]', '[a-b-c]', 'a\\', '[\\']) {
      expect(() => goMatch(bad, 'a'), bad).toThrow(BadPatternError);
    }
  });
  it('hasMeta and cleanPath', () => {
    expect(hasMeta('a/b.txt')).toBe(false);
    expect(hasMeta('a/*.txt')).toBe(true);
    expect(cleanPath('a//b/./c/..')).toBe('a/b');
    expect(cleanPath('/../x')).toBe('/x');
    expect(cleanPath('../x')).toBe('../x');
    expect(cleanPath('')).toBe('.');
  });
});
