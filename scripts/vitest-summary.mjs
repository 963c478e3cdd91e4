#!/usr/bin/env node
// Reads vitest JSON reports and prints their sum as "N passed, M failed[, K skipped]" (one line), the summary CI prints.
// Usage: node scripts/vitest-summary.mjs [--label=LABEL] REPORT.json... A missing or unreadable report counts as one failure.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The counts of one vitest JSON report, or null when there is no readable report. */
export function countReport(path) {
  let r;
  try {
    r = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return null;
  }
  // a file that fails to load has no failed test of its own: count it once; a failed test is not counted again for its file
  const brokenFiles = (r.testResults ?? []).filter((f) => f.status === 'failed' && !(f.assertionResults ?? []).some((a) => a.status === 'failed')).length;
  return {
    passed: r.numPassedTests ?? 0,
    failed: (r.numFailedTests ?? 0) + brokenFiles,
    skipped: (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0),
  };
}

export function summaryLine(paths, label = '') {
  const total = { passed: 0, failed: 0, skipped: 0 };
  const missing = [];
  for (const path of paths) {
    const c = countReport(path);
    if (!c) {
      missing.push(path);
      total.failed += 1;
      continue;
    }
    total.passed += c.passed;
    total.failed += c.failed;
    total.skipped += c.skipped;
  }
  const prefix = label ? `${label}: ` : '';
  const notes = [total.skipped ? `, ${total.skipped} skipped` : '', missing.length ? ` (no report: ${missing.join(', ')})` : ''].join('');
  return `${prefix}${total.passed} passed, ${total.failed} failed${notes}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const label = args.find((a) => a.startsWith('--label='))?.slice('--label='.length) ?? '';
  const paths = args.filter((a) => !a.startsWith('--label='));
  process.stdout.write(`${summaryLine(paths.length ? paths : ['.vitest-report.json'], label)}\n`);
}
