#!/usr/bin/env node
// `npm run conformance [DIR]`: runs kiln against the conformance corpora in DIR
// (default ../shared/conformance beside the repository). Each suite runs when its
// folder is in DIR; a missing DIR, or one with none of the folders, is an error.
// Exit status: vitest's (non-zero when any check fails).
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summaryLine } from './vitest-summary.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = resolve(process.argv[2] ?? join(root, '..', 'shared', 'conformance'));

const SUITES = [
  ['buildkit-parser', ['conformance/buildkit.test.ts', 'conformance/parser-locate.test.ts']],
  ['buildkit-shell', ['conformance/buildkit.test.ts']],
  ['dockerignore', ['conformance/dockerignore.test.ts']],
  ['oci-image-spec-schema', ['conformance/oci-schema.test.ts']],
  ['distribution-spec', ['conformance/distribution-spec.test.ts']],
];

if (!existsSync(dir)) {
  process.stderr.write(`conformance: corpora folder ${dir} not found (usage: npm run conformance [DIR])\n`);
  process.exit(2);
}
const present = SUITES.filter(([sub]) => existsSync(join(dir, sub)));
const absent = SUITES.filter(([sub]) => !existsSync(join(dir, sub))).map(([sub]) => sub);
if (present.length === 0) {
  process.stderr.write(`conformance: ${dir} holds none of ${SUITES.map(([s]) => s).join(', ')}\n`);
  process.exit(2);
}
// buildkit.test.ts needs both parser and shell corpora
let files = [...new Set(present.flatMap(([, f]) => f))];
if (!existsSync(join(dir, 'buildkit-parser')) || !existsSync(join(dir, 'buildkit-shell'))) files = files.filter((f) => f !== 'conformance/buildkit.test.ts');
process.stdout.write(`conformance: corpora in ${dir}: ${present.map(([s]) => s).join(', ')}${absent.length ? ` (not present: ${absent.join(', ')})` : ''}\n`);

const report = join(root, '.conformance-report.json');
rmSync(report, { force: true });
const vitest = join(root, 'node_modules', 'vitest', 'vitest.mjs');
const r = spawnSync(process.execPath, [vitest, 'run', '--config', 'conformance/vitest.config.ts', ...files], {
  cwd: root, stdio: 'inherit', env: { ...process.env, KILN_CONFORMANCE_DIR: dir },
});
process.stdout.write(`${summaryLine([report], 'conformance')}\n`);
process.exit(r.status ?? 1);
