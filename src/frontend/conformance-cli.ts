/** `npm run conformance`: prints kiln's score on BuildKit's parser and shell data. */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { conformanceReport } from './conformance.js';

// dist/frontend/ → repo root → its parent holds shared/.
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const shared = process.env.KILN_CONFORMANCE_DIR ?? join(repoRoot, '..', 'shared', 'conformance');

const { text, parser, shell } = conformanceReport(shared);
if (process.argv.includes('--verbose')) {
  for (const c of [...parser.cases, ...shell.cases]) {
    if (!c.pass) process.stderr.write(`FAIL ${c.name}\n  expected: ${c.expected}\n  actual:   ${c.actual}\n`);
  }
}
process.stdout.write(text);
process.exitCode = parser.passed === parser.total && shell.passed === shell.total ? 0 : 1;
