import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PatternMatcher, findIgnoreFile, loadIgnoreFile, readIgnoreFile } from '../../src/context/dockerignore.js';
import { BuildContext } from '../../src/context/build-context.js';
import { dirname } from 'node:path';
import { isKilnError } from '../../src/errors/index.js';

interface Case { id: string; dockerignore: string[]; path: string; type?: 'file' | 'dir'; excluded: boolean }
const table = JSON.parse(readFileSync(new URL('../fixtures/dockerignore/cases.json', import.meta.url), 'utf8')) as { cases: Case[] };

describe('.dockerignore conformance table', () => {
  it('has 77 cases', () => expect(table.cases.length).toBe(77));
  for (const c of table.cases) {
    it(c.id, () => {
      const m = new PatternMatcher(readIgnoreFile(c.dockerignore.join('\n')));
      expect(m.excludes(c.path)).toBe(c.excluded);
    });
  }
});

describe('.dockerignore conformance table through a real context walk', () => {
  for (const c of table.cases) {
    it(c.id, () => {
      const root = mkdtempSync(join(tmpdir(), 'kiln-di-walk-'));
      const full = join(root, c.path);
      mkdirSync(c.type === 'dir' ? full : dirname(full), { recursive: true });
      if (c.type !== 'dir') writeFileSync(full, 'x');
      try {
        const ctx = BuildContext.open(root, { ignorePatterns: readIgnoreFile(c.dockerignore.join('\n')) });
        expect(ctx.lstat(c.path) === undefined).toBe(c.excluded);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    });
  }
});

describe('.dockerignore errors and file choice', () => {
  it('rejects a bare "!" and malformed patterns', () => {
    expect(() => new PatternMatcher(readIgnoreFile('!'))).toThrow(/illegal exclusion/);
    let err: unknown;
    try { new PatternMatcher(readIgnoreFile('[abc')); } catch (e) { err = e; }
    expect(isKilnError(err) && err.code === 'CONTEXT').toBe(true);
    expect(() => new PatternMatcher(readIgnoreFile('foo\\'))).toThrow();
  });
  it('strips a BOM', () => {
    expect(readIgnoreFile('\uFEFF*.md\n')).toEqual(['*.md']);
  });
  it('<Dockerfile>.dockerignore beside a custom Dockerfile wins over .dockerignore', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-di-'));
    mkdirSync(join(dir, 'docker'));
    writeFileSync(join(dir, '.dockerignore'), 'a.txt\n');
    writeFileSync(join(dir, 'docker', 'app.Dockerfile'), 'FROM scratch\n');
    expect(findIgnoreFile(dir, join(dir, 'docker', 'app.Dockerfile'))).toBe(join(dir, '.dockerignore'));
    writeFileSync(join(dir, 'docker', 'app.Dockerfile.dockerignore'), 'b.txt\n');
    const f = findIgnoreFile(dir, join(dir, 'docker', 'app.Dockerfile'));
    expect(f).toBe(join(dir, 'docker', 'app.Dockerfile.dockerignore'));
    const m = loadIgnoreFile(f);
    expect(m.excludes('b.txt')).toBe(true);
    expect(m.excludes('a.txt')).toBe(false);
    rmSync(dir, { recursive: true, force: true });
  });
});
