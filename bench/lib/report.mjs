// Summaries, console tables, results.json and results.md.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { GOALS, PHASES, PHASE_LABEL, RSS_GOAL_MB, pushReference } from './reference.mjs';

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export function machineInfo(extra = {}) {
  let cpu = '';
  try { cpu = (/model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8')) ?? [])[1] ?? ''; } catch { /* none */ }
  return {
    nproc: os.availableParallelism ? os.availableParallelism() : os.cpus().length,
    cpu: cpu.trim(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    node: process.version,
    ...extra,
  };
}

/**
 * Medians per builder of one bench: {cold, warm, onefile, buildPush} in seconds,
 * peak RSS in MB (max over all phases and runs), samples, error.
 */
export function summarize(benchResult, builderNames) {
  const out = {};
  for (const b of builderNames) {
    const runs = benchResult.runs.filter((r) => r.builder === b);
    const s = { runs: runs.length };
    for (const p of PHASES) {
      const samples = runs.map((r) => r[p]).filter((x) => x && x.code === 0).map((x) => x.ms / 1000);
      s[p] = median(samples);
      s[`${p}Samples`] = samples;
    }
    const pushes = (benchResult.push ?? []).filter((r) => r.builder === b && r.result?.code === 0).map((r) => r.result.ms / 1000);
    if ((benchResult.push ?? []).some((r) => r.builder === b)) {
      s.buildPush = median(pushes);
      s.buildPushSamples = pushes;
    }
    const all = [...runs.flatMap((r) => PHASES.map((p) => r[p])), ...(benchResult.push ?? []).filter((r) => r.builder === b).map((r) => r.result)]
      .filter((x) => x && x.code === 0);
    const maxOf = (k) => { const v = all.map((x) => x[k]).filter((x) => typeof x === 'number' && x > 0); return v.length ? Math.max(...v) / 1024 : null; };
    s.rssMB = maxOf('maxRssKb');
    s.treeRssMB = maxOf('treeRssKb');
    const failed = [...runs.map((r) => r.error), ...(benchResult.push ?? []).filter((r) => r.builder === b).map((r) => r.error && `build+push: ${r.error}`)].find(Boolean);
    if (failed) s.error = failed;
    const notes = [...new Set(runs.flatMap((r) => r.notes ?? []))];
    if (notes.length) s.notes = notes;
    out[b] = s;
  }
  return out;
}

const f = (x) => (x == null ? '—' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const mb = (x) => (x == null ? '—' : `${Math.round(x)}`);
const ratio = (a, b) => (a == null || b == null || b === 0 ? '—' : `${(a / b).toFixed(2)}×`);

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padEnd(n) : s.padStart(n);
}

/** The console table of one bench. */
export function benchTable(bench, summary, ref, builderNames, runs) {
  const hasPush = Object.values(summary).some((s) => 'buildPush' in s) || !!GOALS[bench.name]?.buildPush;
  const cols = [...PHASES, ...(hasPush ? ['buildPush'] : [])];
  const W = 11;
  const lines = [];
  lines.push('');
  lines.push(`── ${bench.name}${bench.stresses ? ` — ${bench.stresses}` : ''}`);
  lines.push(`   seconds, median of ${runs}; peak RSS in MB (largest process / whole process tree)`);
  lines.push(`   ${pad('', 14, true)}${cols.map((c) => pad(PHASE_LABEL[c], W)).join('')}${pad('peak RSS', 16)}`);
  const row = (label, vals, tail = '') => lines.push(`   ${pad(label, 14, true)}${cols.map((c) => pad(vals[c] ?? '—', W)).join('')}${tail}`);
  for (const b of builderNames) {
    const s = summary[b];
    if (!s) continue;
    if (s.error && PHASES.every((p) => s[p] == null)) {
      lines.push(`   ${pad(b, 14, true)}${pad('n/a', W)}   ${s.error}`);
      continue;
    }
    const vals = Object.fromEntries(cols.map((c) => [c, f(s[c])]));
    row(b, vals, pad(`${mb(s.rssMB)} / ${mb(s.treeRssMB)}`, 16));
    if (s.error) lines.push(`   ${pad('', 14, true)}  (some runs failed: ${s.error})`);
  }
  if (summary.kiln && summary.buildah) {
    row('kiln/buildah', Object.fromEntries(cols.map((c) => [c, ratio(summary.kiln[c], summary.buildah[c])])));
  }
  const bk = ref.buildkit[bench.name];
  const bh = ref.buildah[bench.name];
  const pr = pushReference();
  if (bk || (hasPush && bench.name === 'big-layer')) row('BuildKit ref', { ...(bk ? Object.fromEntries(PHASES.map((p) => [p, f(bk[p])])) : {}), ...(bench.name === 'big-layer' ? { buildPush: f(pr.buildkit) } : {}) });
  if (bh) row('Buildah ref', { ...Object.fromEntries(PHASES.map((p) => [p, f(bh[p])])), ...(bench.name === 'big-layer' ? { buildPush: f(pr.buildah) } : {}) });
  const g = GOALS[bench.name];
  row('kiln goal', g ? Object.fromEntries(cols.map((c) => [c, g[c] != null ? `≤${f(g[c])}` : '—'])) : {}, pad(`< ${RSS_GOAL_MB}`, 16));
  if (summary.kiln && summary.buildah && summary.buildah.cold != null && (summary.kiln.cold == null)) {
    lines.push('   (kiln/buildah ratios appear once kiln builds)');
  }
  return lines.join('\n');
}

/** Compact console summary: one line per bench. */
export function overview(results, builderNames) {
  const L = [`summary (seconds, median of ${results.options.runs}: cold / warm / 1-file; peak RSS MB)`];
  const w = 24;
  L.push(`  ${pad('bench', 12, true)}${builderNames.map((b) => pad(b, w)).join('')}${builderNames.length === 2 ? pad('kiln ÷ buildah', w) : ''}${pad('RSS', 12)}`);
  for (const [n, br] of Object.entries(results.benches)) {
    const s = br.summary ?? {};
    const cells = builderNames.map((b) => pad(trip(s[b]), w));
    const r = builderNames.length === 2 ? pad(PHASES.map((p) => ratio(s.kiln?.[p], s.buildah?.[p])).join(' / '), w) : '';
    L.push(`  ${pad(n, 12, true)}${cells.join('')}${r}${pad(builderNames.map((b) => mb(s[b]?.rssMB)).join(' / '), 12)}`);
    for (const b of builderNames) if (s[b] && 'buildPush' in s[b]) L.push(`  ${pad('', 12, true)}${pad(`${b} build+push ${f(s[b].buildPush)}`, w * 2)}`);
  }
  return L.join('\n');
}

function trip(s) {
  if (!s || PHASES.every((p) => s[p] == null)) return 'n/a';
  return PHASES.map((p) => f(s[p])).join(' / ');
}

/** Markdown for the README: one row per bench plus big-layer build + push. */
export function markdown(results) {
  const { machine, options, benches, builders, reference } = results;
  const names = Object.keys(benches);
  const L = [];
  L.push(`### Benchmark results (${results.date.slice(0, 10)})`);
  L.push('');
  L.push(`Machine: ${machine.nproc} CPUs${machine.cpu ? ` (${machine.cpu})` : ''}, ${machine.memoryGiB} GiB RAM, Linux ${machine.kernel}, Node ${machine.node}` +
    `${builders.buildah?.ok ? `, ${builders.buildah.version}${builders.buildah.driver ? ` (${builders.buildah.driver} driver)` : ''}` : ''}.`);
  if (machine.load1) L.push(`Load average (1 min) before the timed builds: median ${machine.load1.median.toFixed(1)}, max ${machine.load1.max.toFixed(1)} on ${machine.nproc} CPUs.`);
  L.push(`Seconds, median of ${options.runs} run${options.runs === 1 ? '' : 's'}: cold (no build cache, base image local) / warm (unchanged rebuild) / 1-file (one file of the context changed). ` +
    'Both builders ran side by side in one `npm run bench`; BuildKit figures are the reference measurements from `../shared/bench/README.md` (same kind of machine, not this run).');
  L.push('');
  L.push('| bench | kiln | Buildah | kiln ÷ Buildah | BuildKit (ref) | kiln goal | peak RSS kiln / Buildah (MB) |');
  L.push('|---|---|---|---|---|---|---|');
  for (const n of names) {
    const s = benches[n].summary;
    const k = s.kiln;
    const b = s.buildah;
    const r = k && b ? PHASES.map((p) => ratio(k[p], b[p])).join(' / ') : '—';
    const bk = reference.buildkit[n];
    const g = GOALS[n];
    const kcell = k ? (k.error && k.cold == null ? 'n/a¹' : trip(k)) : '—';
    L.push(`| ${n} | ${kcell} | ${b ? (b.error && b.cold == null ? 'n/a¹' : trip(b)) : '—'} | ${r} | ${bk ? PHASES.map((p) => f(bk[p])).join(' / ') : '—'} | ${g ? PHASES.map((p) => `≤ ${f(g[p])}`).join(' / ') : '—'} | ${mb(k?.rssMB)} / ${mb(b?.rssMB)} |`);
    if (s.kiln?.buildPush !== undefined || s.buildah?.buildPush !== undefined) {
      const pr = pushReference();
      L.push(`| ${n}: build + push | ${k && 'buildPush' in k ? f(k.buildPush) : '—'} | ${b && 'buildPush' in b ? f(b.buildPush) : '—'} | ${ratio(k?.buildPush, b?.buildPush)} | ${f(pr.buildkit)} | ${g?.buildPush ? `≤ ${f(g.buildPush)}` : '—'} | |`);
    }
  }
  const errs = [];
  for (const n of names) {
    for (const [b, s] of Object.entries(benches[n].summary)) if (s.error) errs.push(`${b} on ${n}${PHASES.every((p) => s[p] == null) ? '' : ' (some runs)'}: \`${String(s.error).replace(/`/g, "'")}\``);
  }
  if (errs.length) {
    L.push('');
    L.push(`¹ Failed builds (full output in \`bench/work/logs/\`): ${errs.join('; ')}.`);
  }
  L.push('');
  L.push(`Peak RSS is the largest single process (wait4 \`ru_maxrss\` via GNU time), max over all phases; the goal is < ${RSS_GOAL_MB} MB. ` +
    'Goals are from issue 7.');
  if (results.micro && Object.keys(results.micro).length) {
    L.push('');
    L.push('#### Micro-benchmarks');
    for (const [name, m] of Object.entries(results.micro)) {
      L.push('');
      L.push(`\`bench/${name}.mjs\`${m.code === 0 ? '' : ` — failed (exit ${m.code})`}:`);
      L.push('');
      L.push('```');
      L.push(microText(m).split('\n').slice(-40).join('\n'));
      L.push('```');
    }
  }
  L.push('');
  return L.join('\n');
}

/** A micro-benchmark's output for people: without its trailing JSON line (kept in results.json). */
export function microText(m) {
  const lines = m.output.trimEnd().split('\n');
  if (m.json) lines.pop();
  return lines.join('\n').trimEnd() + (m.json ? '\n(machine-readable results in results.json)' : '');
}

export async function writeResults(workDir, results) {
  await writeFile(`${workDir}/results.json`, `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(`${workDir}/results.md`, markdown(results));
}
