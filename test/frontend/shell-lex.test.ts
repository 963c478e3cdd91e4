import { describe, expect, it } from 'vitest';
import { KilnError } from '../../src/errors/index.js';
import { processWord, processWords } from '../../src/frontend/index.js';

const env = new Map([['V', 'hello.tar.gz'], ['E', ''], ['P', '/usr/local/bin'], ['S', 'a  b']]);
const w = (s: string) => processWord(s, env);

describe('processWord', () => {
  it('plain and braced variables, unset expands to empty', () => {
    expect(w('$V')).toBe('hello.tar.gz');
    expect(w('${V}x')).toBe('hello.tar.gzx');
    expect(w('a${NOPE}b$NOPE')).toBe('ab');
  });
  it('default, alternative and error modifiers, with and without colon', () => {
    expect(w('${NOPE:-d}|${E:-d}|${E-d}|${NOPE-d}')).toBe('d|d||d');
    expect(w('${V:+alt}|${E:+alt}|${E+alt}|${NOPE+alt}')).toBe('alt||alt|');
    expect(w('${E?}')).toBe('');
    expect(() => w('${E:?must be set}')).toThrow(/E: must be set/);
    expect(() => w('${NOPE?}')).toThrow(/NOPE: is not allowed to be unset/);
  });
  it('the error message of ${V:?msg} is expanded', () => {
    expect(() => w('${NOPE:?$P missing}')).toThrow('NOPE: /usr/local/bin missing');
  });
  it('prefix and suffix removal, shortest and longest', () => {
    expect(w('${V#*.}')).toBe('tar.gz');
    expect(w('${V##*.}')).toBe('gz');
    expect(w('${V%.*}')).toBe('hello.tar');
    expect(w('${V%%.*}')).toBe('hello');
    expect(w('${P#/usr}')).toBe('/local/bin');
    expect(w('${V#nomatch}')).toBe('hello.tar.gz');
    expect(w('${V%?z}')).toBe('hello.tar.');
  });
  it('substitution: first and all', () => {
    expect(w('${P/\\//:}')).toBe(':usr/local/bin');
    expect(w('${P//\\//:}')).toBe(':usr:local:bin');
    expect(w('${V/l*o/L}')).toBe('heL.tar.gz');
    expect(w('${NOPE/a/b}')).toBe('');
  });
  it('quotes and escapes', () => {
    expect(w(`'$V'`)).toBe('$V');
    expect(w('"$V"')).toBe('hello.tar.gz');
    expect(w('\\$V')).toBe('$V');
    expect(w('"a\\"b"')).toBe('a"b');
    expect(w('"a\\tb"')).toBe('a\\tb');
  });
  it('the backtick escape character', () => {
    expect(processWord('`$V', env, { escape: '`' })).toBe('$V');
    expect(processWord('c:\\dir', env, { escape: '`' })).toBe('c:\\dir');
  });
  it('errors are KilnError EXPANSION', () => {
    for (const bad of ['${', '${V', '${V:=x}', '${}', "'open", '"open', '${V:#x}']) {
      try {
        w(bad);
        throw new Error(`no error for ${bad}`);
      } catch (e) {
        expect(e).toBeInstanceOf(KilnError);
        expect((e as KilnError).code).toBe('EXPANSION');
      }
    }
  });
  it('reports unset variables', () => {
    const unset: string[] = [];
    processWord('$A ${B:-x} $V "${C}"', env, { onUnset: (n) => unset.push(n) });
    expect(unset).toEqual(['A', 'B', 'C']);
  });
  it('accepts a function lookup', () => {
    expect(processWord('${X}-$Y', (n) => (n === 'X' ? '1' : undefined))).toBe('1-');
  });
  it('skipUnset and rawQuotes modes', () => {
    expect(processWord('$A ${B} "q"', env, { skipUnset: true, rawQuotes: true })).toBe('$A ${B} "q"');
  });
});

describe('processWords', () => {
  it('splits on unquoted whitespace, including whitespace from unquoted expansions', () => {
    expect(processWords('a $S "$S" c', env)).toEqual(['a', 'a', 'b', 'a  b', 'c']);
    expect(processWords('x\\ y', env)).toEqual(['x y']);
  });
});
