import { describe, expect, it } from 'vitest';
import { parseChmod } from '../../src/steps/copy-chmod.js';

/**
 * Symbolic `--chmod` as BSD setmode(3) computes it (BuildKit's Go translation of it). Where GNU
 * chmod agrees (explicit classes, no sticky bit) the values were checked with it too; where the two
 * differ, the case says so.
 */
describe('COPY --chmod symbolic modes, as BSD setmode', () => {
  const cases: Array<[number, string, number, boolean?]> = [
    // copying a class: refused before 2026-12-08
    [0o640, 'g=u', 0o660],
    [0o750, 'g=u', 0o770],
    [0o754, 'o=g', 0o755],
    [0o700, 'go=u', 0o777],
    [0o614, 'g+u', 0o674],
    [0o674, 'g-u', 0o614],
    [0o640, 'ug=o', 0o000],
    [0o751, 'o=u,g=o', 0o777],
    // `=` from a class replaces only the permission bits: the set-user-ID bit stays (GNU clears it: 550)
    [0o4750, 'u=g', 0o4550],
    // several operations in one clause, X on the mode before the clauses
    [0o644, 'u+x-w', 0o544],
    [0o744, 'g+X', 0o754],
    [0o600, 'a=rX', 0o444],
    [0o700, 'a=rX', 0o555, true],
    // the sticky bit only with no class, u, g or a; `o+t` and `o-t` do nothing (GNU: they set and clear it)
    [0o755, '+t', 0o1755],
    [0o755, 'u+t', 0o1755],
    [0o755, 'a+t', 0o1755],
    [0o755, 'o+t', 0o755],
    [0o1755, 'o-t', 0o1755],
    [0o1755, '-t', 0o755],
    // set-id bits by class; `o+s` does nothing
    [0o755, 'u+s', 0o4755],
    [0o755, 'g+s', 0o2755],
    [0o755, 'o+s', 0o755],
    [0o755, '+s', 0o6755],
    // `=` with nothing clears the classes' bits but not the sticky bit (GNU's `a=` clears it too)
    [0o1777, 'a=', 0o1000],
    [0o1777, '=', 0o1000],
    [0o644, 'u=rwx,g=rx,o=', 0o750],
  ];
  for (const [from, spec, want, isDir] of cases) {
    it(`${from.toString(8).padStart(4, '0')} ${spec}${isDir ? ' (directory)' : ''} → ${want.toString(8).padStart(4, '0')}`, () => {
      expect(parseChmod(spec)(from, isDir === true).toString(8)).toBe(want.toString(8));
    });
  }

  it('refuses what setmode refuses', () => {
    for (const bad of ['', 'u', 'u+x,', 'q+x', 'u+q', 'u+x,,g+w', '+x g']) expect(() => parseChmod(bad), bad).toThrow(/--chmod/);
  });
});
