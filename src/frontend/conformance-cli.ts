/** `npm run conformance`: prints kiln's score on BuildKit's parser and shell data. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runParserConformance, runShellConformance } from './conformance.js';

// dist/frontend/ → repo root → its parent holds shared/.
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const shared = process.env.KILN_CONFORMANCE_DIR ?? join(repoRoot, '..', 'shared', 'conformance');

const parser = runParserConformance(join(shared, 'buildkit-parser'));
const shell = runShellConformance(join(shared, 'buildkit-shell'));
if (process.argv.includes('--verbose')) {
  for (const c of [...parser.cases, ...shell.cases]) {
    if (!c.pass) process.stderr.write(`FAIL ${c.name}\n  expected: ${c.expected}\n  actual:   ${c.actual}\n`);
  }
}
process.stdout.write(`parser conformance: ${parser.passed}/${parser.total}\n`);
process.stdout.write(`shell conformance: ${shell.passed}/${shell.total}\n`);
process.exitCode = parser.passed === parser.total && shell.passed === shell.total ? 0 : 1;
