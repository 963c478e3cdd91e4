import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { corporaDir, runParserConformance, runShellConformance } from './runner.js';

const dir = corporaDir();

describe('BuildKit parser corpus (buildkit-parser)', () => {
  it('every positive dump matches, every negative case fails, line numbers match', () => {
    const r = runParserConformance(join(dir, 'buildkit-parser'));
    const failed = r.cases.filter((c) => !c.pass).map((c) => `${c.name}\n  expected: ${c.expected}\n  actual:   ${c.actual}`);
    expect(failed).toEqual([]);
    expect(r.total).toBeGreaterThan(0);
    console.log(`parser conformance: ${r.passed}/${r.total}`);
  });
});

describe('BuildKit shell corpus (buildkit-shell)', () => {
  it('envVarTest and wordsTest', () => {
    const r = runShellConformance(join(dir, 'buildkit-shell'));
    const failed = r.cases.filter((c) => !c.pass).map((c) => `${c.name}\n  expected: ${c.expected}\n  actual:   ${c.actual}`);
    expect(failed).toEqual([]);
    expect(r.total).toBeGreaterThan(0);
    console.log(`shell conformance: ${r.passed}/${r.total}`);
  });
});
