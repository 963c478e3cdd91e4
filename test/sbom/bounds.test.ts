import { describe, expect, it } from 'vitest';
import { parsePackageLock } from '../../src/sbom/npm.js';

/**
 * The SBOM scan reads files an image's author wrote. Whatever they hold, the
 * scan's work is bounded by its limits — asserted here on what it read and
 * listed, never on how long it took.
 */

describe('npm v1 lockfile', () => {
  it('walks 200,000 nested dependencies without recursion', () => {
    const depth = 200_000;
    let text = '{}';
    for (let i = depth - 1; i >= 0; i--) text = `{"a":{"version":"1.0.${i}","dependencies":${text}}}`;
    const pkgs = [...parsePackageLock(`{"lockfileVersion":1,"dependencies":${text}}`, 'app/package-lock.json')];
    expect(pkgs).toHaveLength(depth);
    // depth first, outermost first, as the recursive walk listed them
    expect(pkgs[0]?.version).toBe('1.0.0');
    expect(pkgs.at(-1)?.version).toBe(`1.0.${depth - 1}`);
  });
});
