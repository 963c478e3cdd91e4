// Micro-benchmarks: standalone scripts bench/<name>.mjs written next to the modules they
// measure. Each runs as a child process and prints its own results; we show them in a
// section each and keep their output in results.json.
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './proc.mjs';

export const KNOWN = ['frontend', 'context', 'layer', 'registry', 'sandbox'];

/** Names of the micro-benchmarks present in benchDir, known ones first. */
export async function listMicro(benchDir) {
  const present = (await readdir(benchDir)).filter((f) => f.endsWith('.mjs') && f !== 'run.mjs').map((f) => f.slice(0, -4));
  return [...KNOWN.filter((n) => present.includes(n)), ...present.filter((n) => !KNOWN.includes(n)).sort()];
}

/**
 * Run bench/<name>.mjs. Environment for the script: KILN_BENCH_REGISTRY (the bench registry,
 * with busybox:latest and debian:bookworm pushed), KILN_BENCH_TMP (a scratch dir it may use),
 * KILN_BENCH_RUNS.
 */
export async function runMicro(benchDir, name, { env, log, timeoutMs = 15 * 60e3 }) {
  const script = join(benchDir, `${name}.mjs`);
  if (!existsSync(script)) return null;
  const r = await run(process.execPath, [script], { cwd: join(benchDir, '..'), env, log, timeoutMs, measure: true });
  let json = null;
  const last = r.output.trimEnd().split('\n').pop() ?? '';
  if (last.startsWith('{') || last.startsWith('[')) {
    try { json = JSON.parse(last); } catch { /* plain text */ }
  }
  return { code: r.code, ms: r.ms, maxRssKb: r.maxRssKb, timedOut: r.timedOut, output: r.output, json };
}
