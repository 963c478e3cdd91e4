// Summaries, console tables, results.json and results.md.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { PHASES, PHASE_LABEL, PUSH_RATIO_GOAL, RATIO_GOAL, RSS_GOAL_MB, SPREAD_LIMIT } from './reference.mjs';

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

/** min, median, max of successful samples; `wide` when max ÷ min is beyond SPREAD_LIMIT. */
function stats(samples) {
  if (!samples.length) return { median: null, min: null, max: null, wide: false };
  const min = Math.min(...samples);
  const max = Math.max(...samples);
  return { median: median(samples), min, max, wide: samples.length > 1 && min > 0 && max / min > SPREAD_LIMIT };
}

/**
 * Per builder of one bench: {cold, warm, onefile, buildPush} medians in seconds, with
 * `<phase>Min`, `<phase>Max`, `<phase>Wide` and the samples; peak RSS in MB (max over all
 * phases and runs; null for a builder whose memory lives in a daemon), error, notes.
 */
export function summarize(benchResult, builderNames) {
  const out = {};
  for (const b of builderNames) {
    const runs = benchResult.runs.filter((r) => r.builder === b);
    const s = { runs: runs.length };
    const put = (p, samples) => {
      const st = stats(samples);
      s[p] = st.median;
      s[`${p}Min`] = st.min;
      s[`${p}Max`] = st.max;
      s[`${p}Wide`] = st.wide;
      s[`${p}Samples`] = samples;
    };
    for (const p of PHASES) put(p, runs.map((r) => r[p]).filter((x) => x && x.code === 0).map((x) => x.ms / 1000));
    if ((benchResult.push ?? []).some((r) => r.builder === b)) {
      put('buildPush', (benchResult.push ?? []).filter((r) => r.builder === b && r.result?.code === 0).map((r) => r.result.ms / 1000));
    }
    const all = [...runs.flatMap((r) => PHASES.map((p) => r[p])), ...(benchResult.push ?? []).filter((r) => r.builder === b).map((r) => r.result)]
      .filter((x) => x && x.code === 0);
    const maxOf = (k) => { const v = all.map((x) => x[k]).filter((x) => typeof x === 'number' && x > 0); return v.length ? Math.max(...v) / 1024 : null; };
    s.rssMB = b === 'buildkit' ? null : maxOf('maxRssKb');
    s.treeRssMB = b === 'buildkit' ? null : maxOf('treeRssKb');
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
const LABEL = { kiln: 'kiln', buildkit: 'BuildKit', buildah: 'Buildah' };

/** "1.23 (1.10–1.40)" with a "!" when the spread is too wide to trust. */
function cell(s, p) {
  if (!s || s[p] == null) return '—';
  const range = s[`${p}Min`] != null && s[`${p}Max`] !== s[`${p}Min`] ? ` (${f(s[`${p}Min`])}–${f(s[`${p}Max`])})` : '';
  return `${f(s[p])}${range}${s[`${p}Wide`] ? ' !' : ''}`;
}

function pad(s, n, right = false) {
  s = String(s);
  return right ? s.padEnd(n) : s.padStart(n);
}

function ratioRows(summary) {
  const rows = [];
  if (summary.kiln && summary.buildkit) rows.push(['kiln÷BuildKit', 'buildkit']);
  if (summary.kiln && summary.buildah) rows.push(['kiln÷Buildah', 'buildah']);
  return rows;
}

/** The console table of one bench: medians (min–max) per builder, ratios, goals. */
export function benchTable(bench, summary, builderNames, runs) {
  const hasPush = Object.values(summary).some((s) => 'buildPush' in s);
  const cols = [...PHASES, ...(hasPush ? ['buildPush'] : [])];
  const W = 22;
  const lines = [];
  lines.push('');
  lines.push(`── ${bench.name}${bench.stresses ? ` — ${bench.stresses}` : ''}`);
  lines.push(`   seconds, median (min–max) of ${runs}, "!" = max÷min > ${SPREAD_LIMIT}; peak RSS in MB (largest process / process tree)`);
  lines.push(`   ${pad('', 14, true)}${cols.map((c) => pad(PHASE_LABEL[c], W)).join('')}${pad('peak RSS', 14)}`);
  const row = (label, vals, tail = '') => lines.push(`   ${pad(label, 14, true)}${cols.map((c) => pad(vals[c] ?? '—', W)).join('')}${tail}`);
  for (const b of builderNames) {
    const s = summary[b];
    if (!s) continue;
    if (s.error && PHASES.every((p) => s[p] == null)) {
      lines.push(`   ${pad(LABEL[b] ?? b, 14, true)}${pad('n/a', W)}   ${s.error}`);
      continue;
    }
    row(LABEL[b] ?? b, Object.fromEntries(cols.map((c) => [c, cell(s, c)])), pad(s.rssMB == null ? 'daemon' : `${mb(s.rssMB)} / ${mb(s.treeRssMB)}`, 14));
    if (s.error) lines.push(`   ${pad('', 14, true)}  (some runs failed: ${s.error})`);
  }
  for (const [label, other] of ratioRows(summary)) row(label, Object.fromEntries(cols.map((c) => [c, ratio(summary.kiln[c], summary[other][c])])));
  if (summary.buildkit) row('goal', Object.fromEntries(cols.map((c) => [c, c === 'buildPush' ? `≤ ${PUSH_RATIO_GOAL.toFixed(2)}×` : `≤ ${RATIO_GOAL[c].toFixed(2)}×`])), pad(`< ${RSS_GOAL_MB}`, 14));
  return lines.join('\n');
}

/** Compact console summary: one line per bench. */
export function overview(results, builderNames) {
  const L = [`summary (seconds, median of ${results.options.runs}: cold / warm / 1-file)${results.options.contended ? ', one core kept busy' : ''}`];
  const w = 24;
  const rs = builderNames.includes('kiln') ? builderNames.filter((b) => b !== 'kiln') : [];
  L.push(`  ${pad('bench', 12, true)}${builderNames.map((b) => pad(LABEL[b] ?? b, w)).join('')}${rs.map((b) => pad(`kiln ÷ ${LABEL[b]}`, w)).join('')}`);
  for (const [n, br] of Object.entries(results.benches)) {
    const s = br.summary ?? {};
    L.push(`  ${pad(n, 12, true)}${builderNames.map((b) => pad(trip(s[b]), w)).join('')}${rs.map((b) => pad(PHASES.map((p) => ratio(s.kiln?.[p], s[b]?.[p])).join(' / '), w)).join('')}`);
    for (const b of builderNames) if (s[b] && 'buildPush' in s[b]) L.push(`  ${pad('', 12, true)}${pad(`${LABEL[b]} build+push ${f(s[b].buildPush)}`, w * 2)}`);
  }
  return L.join('\n');
}

function trip(s) {
  if (!s || PHASES.every((p) => s[p] == null)) return 'n/a';
  return PHASES.map((p) => f(s[p])).join(' / ');
}

/** Markdown for the README: one row per bench and builder, ratios against the same run's BuildKit and Buildah. */
export function markdown(results) {
  const { machine, options, benches, builders } = results;
  const names = Object.keys(benches);
  const L = [];
  L.push(`### Benchmark results (${results.date.slice(0, 10)}${options.contended ? ', one core kept busy' : ''})`);
  L.push('');
  const versions = Object.entries(builders).filter(([, d]) => d.ok).map(([b, d]) => `${LABEL[b] ?? b}: ${d.version}${d.driver ? ` (${d.driver} driver)` : ''}`);
  L.push(`Machine: ${machine.nproc} CPUs${machine.cpu ? ` (${machine.cpu})` : ''}, ${machine.memoryGiB} GiB RAM, Linux ${machine.kernel}, Node ${machine.node}. ${versions.join('; ')}.`);
  if (machine.load1) L.push(`Load average (1 min) before the timed builds: median ${machine.load1.median.toFixed(1)}, max ${machine.load1.max.toFixed(1)} on ${machine.nproc} CPUs.`);
  L.push(`Seconds, median (min–max) of ${options.runs} run${options.runs === 1 ? '' : 's'}, all tools in this one run, interleaved run by run: cold (no build cache, base image local) / warm (unchanged rebuild) / 1-file (one file of the context changed). "!" marks a spread (max ÷ min) over ${SPREAD_LIMIT}: too noisy to trust.`);
  L.push('');
  L.push('| bench | phase | kiln | BuildKit | Buildah | kiln ÷ BuildKit | kiln ÷ Buildah |');
  L.push('|---|---|---|---|---|---|---|');
  for (const n of names) {
    const s = benches[n].summary;
    const phases = [...PHASES, ...(Object.values(s).some((x) => 'buildPush' in x) ? ['buildPush'] : [])];
    for (const p of phases) {
      L.push(`| ${n} | ${PHASE_LABEL[p]} | ${cell(s.kiln, p)} | ${cell(s.buildkit, p)} | ${cell(s.buildah, p)} | ${ratio(s.kiln?.[p], s.buildkit?.[p])} | ${ratio(s.kiln?.[p], s.buildah?.[p])} |`);
    }
  }
  L.push('');
  L.push(`Peak RSS of kiln (largest process, MB): ${names.map((n) => `${n} ${mb(benches[n].summary.kiln?.rssMB)}`).join(', ')} (goal < ${RSS_GOAL_MB}). BuildKit's memory is its daemon's and is not sampled.`);
  const errs = [];
  for (const n of names) {
    for (const [b, s] of Object.entries(benches[n].summary)) if (s.error) errs.push(`${LABEL[b] ?? b} on ${n}${PHASES.every((p) => s[p] == null) ? '' : ' (some runs)'}: \`${String(s.error).replace(/`/g, "'")}\``);
  }
  if (errs.length) {
    L.push('');
    L.push(`Failed builds (full output in \`bench/work/logs/\`): ${errs.join('; ')}.`);
  }
  if (results.scaling) {
    L.push('');
    L.push('#### Scaling');
    L.push('');
    L.push('```');
    L.push(results.scaling.trimEnd());
    L.push('```');
  }
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
