import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { conformanceReport, runParserConformance, runShellConformance } from '../../src/frontend/conformance.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const shared = join(repoRoot, '..', 'shared', 'conformance');

describe('BuildKit conformance', () => {
  it('parser golden files: every positive dump matches, every negative case fails, line numbers match', () => {
    const r = runParserConformance(join(shared, 'buildkit-parser'));
    const failed = r.cases.filter((c) => !c.pass).map((c) => `${c.name}\n  expected: ${c.expected}\n  actual:   ${c.actual}`);
    expect(failed).toEqual([]);
    expect(r.total).toBe(38);
    expect(r.passed).toBe(r.total);
  });

  it('shell lexer: envVarTest and wordsTest', () => {
    const r = runShellConformance(join(shared, 'buildkit-shell'));
    const failed = r.cases.filter((c) => !c.pass).map((c) => `${c.name}\n  expected: ${c.expected}\n  actual:   ${c.actual}`);
    expect(failed).toEqual([]);
    expect(r.total).toBeGreaterThan(250);
    expect(r.passed).toBe(r.total);
  });
});

describe('npm run conformance', () => {
  it('prints exactly the two score lines (conformance-cli.ts prints this report)', () => {
    expect(conformanceReport(shared).text).toBe('parser conformance: 38/38\nshell conformance: 252/252\n');
  });
});
