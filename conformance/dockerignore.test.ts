import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PatternMatcher, readIgnoreFile } from '../src/context/dockerignore.js';
import { corporaDir } from './runner.js';

interface Case { id: string; dockerignore: string[]; path: string; excluded: boolean }
const table = JSON.parse(readFileSync(join(corporaDir(), 'dockerignore', 'cases.json'), 'utf8')) as { cases: Case[] };

// The test suite runs the project's copy (test/fixtures/dockerignore); this runs the corpora's current table.
describe('.dockerignore table (dockerignore/cases.json)', () => {
  it('has cases', () => expect(table.cases.length).toBeGreaterThan(0));
  it.each(table.cases.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    expect(new PatternMatcher(readIgnoreFile(c.dockerignore.join('\n'))).excludes(c.path)).toBe(c.excluded);
  });
});
