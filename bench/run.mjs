#!/usr/bin/env node
import { execFileSync } from 'node:child_process';
// `npm run bench`: kiln, BuildKit and Buildah side by side on the Dockerfiles of ../shared/bench,
// then the micro-benchmarks bench/*.mjs. See the README's Benchmarks section.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, rmdir } from 'node:fs/promises';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BASES, basesOf, busyboxBinary, ensureDebianRootfs, pushLayout } from './lib/bases.mjs';
import { kilnBaseLayouts, kilnLibraryAvailable } from './lib/bases-kiln.mjs';
import { buildahBuilder, buildkitBuilder, kilnBuilder } from './lib/builders.mjs';
import { spawn } from 'node:child_process';
import { changeOneFile, listBenches, prepareContexts, sharedBenchDir } from './lib/contexts.mjs';
import { listMicro, runMicro } from './lib/micro.mjs';
import { HELP, parseOptions } from './lib/options.mjs';
import { errorLine, killAll, removeTree } from './lib/proc.mjs';
import { PHASES, PHASE_LABEL, PUSH_BENCHES } from './lib/reference.mjs';
import { startRegistry } from './lib/registry-server.mjs';
import { PEER_PROGRAM_FILES, kilnProgramFiles, settleDisk } from './lib/settle.mjs';
import { benchTable, machineInfo, median, microText, overview, summarize, writeResults as writeResultsFiles } from './lib/report.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(benchDir);
const workDir = join(benchDir, 'work');
const cacheDir = join(workDir, 'cache');
const logDir = join(workDir, 'logs');

const t0 = Date.now();
const stamp = () => {
  const s = Math.round((Date.now() - t0) / 1000);
  return `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}]`;
};
const say = (msg) => console.log(`${stamp()} ${msg}`);
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;

let opts;
try {
  opts = parseOptions(process.argv.slice(2));
} catch (e) {
  console.error(`bench: ${e.message}\n\n${HELP}`);
  process.exit(2);
}
if (opts.help) {
  console.log(HELP);
  process.exit(0);
}

// a closed pipe (| head) must not kill the run before it cleans up
process.stdout.on('error', () => {});

// ---- cleanup on every exit path -------------------------------------------------------
const cleanups = [];
let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) {
      try { await fn(); } catch (e) { console.error(`bench: cleanup: ${e.message}`); }
    }
  })();
  return cleaning;
}
/** Set on Ctrl-C: stop measuring, write nothing (a partial run must not replace the last results). */
let interrupted = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted) return;
    interrupted = true;
    console.error(`\nbench: ${sig}, stopping builders and cleaning up (results not written)…`);
    killAll('SIGTERM');
    setTimeout(() => killAll('SIGKILL'), 5000).unref();
    cleanup().finally(() => process.exit(130));
  });
}

class Interrupted extends Error {}

function checkInterrupted() {
  if (interrupted) throw new Interrupted('interrupted');
}

async function writeResults(dir, results) {
  checkInterrupted();
  await writeResultsFiles(dir, results);
}

/** Builder roots (one per builder, bench and run) live here, inside the run's temp dir. */
let rootsDir;
let baseMethod;
/** 1-minute load average sampled before every timed build: how quiet the machine was. */
const loads = [];
/** What settling the disk before each run did (lib/settle.mjs): dropped or why not, bytes read back, time. */
const settles = [];
/** The files every builder runs from, read back after each settle (listed once). */
let programFiles;
/** Restarts the bench registry if something killed it (set once it is started). */
let ensureRegistry = async () => {};
const registryRestarts = [];

async function main() {
  const sharedDir = sharedBenchDir(repoRoot);
  const allBenches = await listBenches(sharedDir);
  const allMicro = await listMicro(benchDir);
  const known = new Set([...allBenches.map((b) => b.name), ...allMicro]);
  for (const n of [...(opts.only ?? []), ...opts.skip]) {
    if (!known.has(n)) throw new Error(`unknown bench ${n} (have: ${[...known].join(', ')})`);
  }
  const wanted = (n) => (!opts.only || opts.only.includes(n)) && !opts.skip.includes(n);
  const benches = allBenches.filter((b) => wanted(b.name));
  const micro = opts.micro ? allMicro.filter(wanted) : [];

  await mkdir(cacheDir, { recursive: true });
  await rm(logDir, { recursive: true, force: true });
  await mkdir(logDir, { recursive: true });
  if (opts.builders.includes('buildah')) cleanups.push(await forgetBuildahBlobCache());
  const tmpBase = await mkdtemp(join(opts.tmp ?? os.tmpdir(), 'kiln-bench-'));
  rootsDir = join(tmpBase, 'roots');
  await mkdir(rootsDir);
  cleanups.push(async () => {
    if (opts.keep) { console.log(`bench: kept ${tmpBase}`); return; }
    await removeTree(tmpBase);
  });

  say(`kiln bench: ${benches.map((b) => b.name).join(', ') || 'no builds'}${micro.length ? `; micro: ${micro.join(', ')}` : ''}; runs=${opts.runs}; logs in ${logDir}`);

  // ---- registry and base images --------------------------------------------------------
  const reg = await startRegistry(join(tmpBase, 'registry'));
  cleanups.push(() => reg.stop());
  ensureRegistry = async () => {
    const note = await reg.ensure();
    if (note) { say(`warning: ${note}`); registryRestarts.push({ at: new Date().toISOString(), note }); }
    return Boolean(note);
  };
  const registry = reg.host;
  say(`registry: docker-registry on ${registry}${reg.port !== 5000 ? ' (5000 was taken; passing --build-arg REGISTRY)' : ''}`);
  for (const b of benches) b.bases = basesOf(b.dockerfile);
  const needBases = [...new Set(['busybox', ...benches.flatMap((b) => b.bases)])];
  baseMethod = await pushBases(needBases, registry);

  // ---- builders ----------------------------------------------------------------------
  const builders = [];
  const builderInfo = {};
  for (const name of opts.builders) {
    const b = name === 'kiln'
      ? kilnBuilder({ repoRoot, registry, extraArgs: opts.kilnArgs })
      : name === 'buildkit'
        ? buildkitBuilder({ registry, peersDir: join(sharedDir, 'peers'), peerDir: join(tmpBase, 'peers') })
        : buildahBuilder({ registry });
    if (b.stop) cleanups.push(() => b.stop());
    const d = await b.detect();
    builderInfo[name] = d;
    if (name === 'buildah' && d.ok) {
      const cands = opts.buildahDriver ? [opts.buildahDriver] : ['overlay', 'vfs'];
      const p = await b.pickDriver(tmpBase, `${registry}/busybox:latest`, cands, join(logDir, 'buildah-probe.log'));
      if (!p.driver) { d.ok = false; d.reason = `no storage driver works: ${p.notes.join('; ')}`; }
      d.driver = p.driver;
      if (p.notes.length) d.driverNotes = p.notes;
    }
    if (name === 'buildah' && !d.ok && d.reason === 'buildah not installed') {
      say('buildah: not installed, skipped');
      delete builderInfo[name];
      continue;
    }
    say(`${name}: ${d.ok ? `${d.version}${d.driver ? `, ${d.driver} storage driver` : ''}` : `n/a — ${d.reason}`}`);
    builders.push(b);
  }
  const builderNames = builders.map((b) => b.name);

  const results = {
    date: new Date().toISOString(),
    machine: machineInfo(),
    options: { runs: opts.runs, only: opts.only, builders: builderNames, push: opts.push, kilnArgs: opts.kilnArgs, contended: false },
    registry,
    registryRestarts,
    baseImages: baseMethod,
    builders: builderInfo,
    benches: {},
    micro: {},
  };

  // ---- contention ----------------------------------------------------------------------
  if (opts.contended) {
    // one core kept busy for the whole run, by a process outside every builder's tree
    const spinner = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
    cleanups.push(async () => { spinner.kill('SIGKILL'); });
    say(`contended: pid ${spinner.pid} keeps one core busy`);
    results.options.contended = true;
  }

  // ---- contexts ----------------------------------------------------------------------
  if (benches.length && builders.some((b) => builderInfo[b.name].ok)) {
    say('copying contexts and running gen.sh …');
    await prepareContexts(sharedDir, join(tmpBase, 'contexts'), benches, { log: say, logFile: join(logDir, 'gen.log') });
  }

  // ---- builds ------------------------------------------------------------------------
  const tables = [];
  for (const bench of benches) {
    const br = { stresses: bench.stresses, changeFile: bench.env.CHANGE_FILE, bases: bench.bases, runs: [], push: [] };
    results.benches[bench.name] = br;
    const broken = new Map(); // builder → error that stops further runs
    for (const b of builders) if (!builderInfo[b.name].ok) broken.set(b.name, builderInfo[b.name].reason);
    for (const [name, reason] of broken) br.runs.push({ builder: name, run: 0, error: reason });

    for (let run = 1; run <= opts.runs; run++) {
      // interleaved run by run (A B C, then C B A): drift on a shared machine hits every tool alike
      const order = run % 2 ? builders : [...builders].reverse();
      for (const b of order) {
        if (broken.has(b.name)) continue;
        await ensureRegistry();
        let rec = await measureRun(b, bench, run, registry);
        // the registry was killed under us (shared machine): measure this run again
        checkInterrupted();
        if (rec.error && (await ensureRegistry())) rec = await measureRun(b, bench, run, registry);
        // Debian's dockerd 20.10 on this kernel sometimes starts a container on an empty rootfs
        // ("stat /bin/sh: no such file or directory"); the whole run is measured again from a
        // pruned cache, once, and the retry is noted in the results
        if (rec.error && b.retryOnError && b.retryOnError(rec.error)) {
          say(`  ${b.name}: ${rec.error} — measuring run ${run} again from a fresh cache`);
          const first = rec.error;
          rec = await measureRun(b, bench, run, registry);
          (rec.notes ??= []).push(`run retried after: ${first}`);
        }
        br.runs.push(rec);
        if (rec.error && !rec.cold) broken.set(b.name, rec.error);
      }
    }
    if (opts.push && PUSH_BENCHES.has(bench.name)) {
      for (let run = 1; run <= opts.runs; run++) {
        for (const b of run % 2 ? builders : [...builders].reverse()) {
          if (broken.has(b.name)) continue;
          await ensureRegistry();
          const rec = await measurePush(b, bench, run, registry);
          checkInterrupted();
          br.push.push(rec);
          if (rec.error) break;
        }
      }
    }
    br.summary = summarize(br, builderNames);
    const table = benchTable(bench, br.summary, builderNames, opts.runs);
    tables.push(table);
    console.log(table);
    console.log('');
    if (loads.length) results.machine.load1 = { min: Math.min(...loads), median: median(loads), max: Math.max(...loads) };
    await writeResults(workDir, results);
  }

  // ---- micro-benchmarks ----------------------------------------------------------------
  for (const name of micro) {
    await ensureRegistry();
    say(`micro-benchmark bench/${name}.mjs …`);
    const scratch = await mkdtemp(join(tmpBase, `micro-${name}-`));
    const bk = builders.find((b) => b.name === 'buildkit' && builderInfo.buildkit?.ok);
    const env = { ...process.env, KILN_BENCH_REGISTRY: registry, KILN_BENCH_TMP: scratch, KILN_BENCH_RUNS: String(opts.runs), ...(bk ? { KILN_BENCH_DOCKER_HOST: bk.dockerHost() } : {}) };
    const m = await runMicro(benchDir, name, { env, log: join(logDir, `micro-${name}.log`) });
    await removeTree(scratch);
    checkInterrupted();
    if (!m) continue;
    results.micro[name] = m;
    console.log(`\n── micro: ${name} (${secs(m.ms)}${m.code === 0 ? '' : `, FAILED exit ${m.code}${m.timedOut ? ' (timeout)' : ''}`})`);
    console.log(microText(m).split('\n').map((l) => `   ${l}`).join('\n'));
    console.log('');
    await writeResults(workDir, results);
  }

  // ---- summary -----------------------------------------------------------------------
  if (loads.length) {
    results.machine.load1 = { min: Math.min(...loads), median: median(loads), max: Math.max(...loads) };
  }
  if (settles.length) {
    const reason = settles.find((r) => r.reason)?.reason;
    results.settle = {
      runs: settles.length, dropped: settles.filter((r) => r.dropped).length,
      medianMs: median(settles.map((r) => r.ms)), medianWarmedBytes: median(settles.map((r) => r.warmedBytes)), ...(reason ? { reason } : {}),
    };
  }
  await writeResults(workDir, results);
  if (tables.length > 1) console.log(`\n${overview(results, builderNames)}`);
  if (loads.length) {
    const l = results.machine.load1;
    console.log(`\nmachine load (1-min average before each timed build): min ${l.min.toFixed(1)}, median ${l.median.toFixed(1)}, max ${l.max.toFixed(1)} on ${results.machine.nproc} CPUs${l.median > results.machine.nproc ? ' — busy machine, absolute times are inflated; trust the ratios more' : ''}`);
  }
  if (results.settle) {
    const s = results.settle;
    console.log(`disk settled before each run (sync, clean page cache dropped, programs and context read back): ${s.dropped} of ${s.runs} runs, median ${(s.medianMs / 1000).toFixed(2)} s${s.reason ? `; not dropped: ${s.reason}` : ''}`);
  }
  console.log(`\n${stamp()} done. Results: ${join(workDir, 'results.json')}, ${join(workDir, 'results.md')}`);
}

/**
 * Make the base images and push them with skopeo. Prefers kiln's own library (dist/store,
 * dist/layer) when it is built; falls back to GNU tar + zlib (bench/lib/bases.mjs).
 */
async function pushBases(names, registry) {
  const log = join(logDir, 'bases.log');
  if (!opts.tarBases && kilnLibraryAvailable(repoRoot)) {
    try {
      const t = Date.now();
      const debianRootfs = names.includes('debian') ? await ensureDebianRootfs(cacheDir, say) : null;
      const layouts = await kilnBaseLayouts(repoRoot, cacheDir, names, { busyboxBin: busyboxBinary(), debianRootfs, log: say });
      for (const n of names) await pushLayout(layouts[n], `${registry}/${BASES[n].ref}`, log);
      say(`bases ${names.map((n) => BASES[n].ref).join(', ')} made with kiln's library and pushed (${secs(Date.now() - t)})`);
      return 'kiln';
    } catch (e) {
      say(`kiln's library could not make the base images (${String(e.message).split('\n')[0]}); using tar instead`);
    }
  }
  for (const n of names) {
    const t = Date.now();
    const layout = await BASES[n].make(cacheDir, say);
    await pushLayout(layout, `${registry}/${BASES[n].ref}`, log);
    say(`base ${BASES[n].ref} made with tar and pushed (${secs(Date.now() - t)})`);
  }
  return 'tar';
}

/** One run of one builder on one bench: fresh root, primed, cold → warm → 1-file. */
async function measureRun(builder, bench, run, registry) {
  const rec = { builder: builder.name, run, notes: [] };
  const st = await builder.newState(rootsDir);
  const log = join(logDir, `${bench.name}-${builder.name}-run${run}.log`);
  try {
    await settle(bench);
    let primeMs = 0;
    for (const base of bench.bases) {
      const p = await builder.prime(st, `${registry}/${BASES[base].ref}`, log);
      primeMs += p.ms;
      if (p.code !== 0) rec.notes.push(`base not primed (cold includes the pull): ${errorLine(p.output)}`);
    }
    rec.primeMs = primeMs;
    const parts = [];
    for (const phase of PHASES) {
      checkInterrupted();
      if (phase === 'onefile') await changeOneFile(bench, `${builder.name}-${run}`);
      // every timed build starts with the disk quiet: what the previous build (or builder) left
      // dirty in the page cache is written out first instead of slowing this one down
      execFileSync('sync');
      const load = os.loadavg()[0];
      loads.push(load);
      const r = await builder.build(st, { bench, phase }, log);
      rec[phase] = { load1: Math.round(load * 100) / 100, ms: r.ms, code: r.code, maxRssKb: r.maxRssKb, treeRssKb: r.treeRssKb, cachedSteps: builder.cachedSteps(r.output), timedOut: r.timedOut };
      if (r.code !== 0) {
        rec.error = `${PHASE_LABEL[phase]}: ${errorLine(r.output)}${r.timedOut ? ' (timeout)' : ''}`;
        if (phase === 'cold') delete rec.cold;
        parts.push(`${PHASE_LABEL[phase]} FAILED`);
        break;
      }
      parts.push(`${PHASE_LABEL[phase]} ${secs(r.ms)}${phase !== 'cold' ? ` (${rec[phase].cachedSteps} cached)` : ''}`);
    }
    say(`${bench.name} · ${builder.name} · run ${run}: prime ${secs(primeMs)} · ${parts.join(' · ')}`);
    for (const n of rec.notes) say(`  note: ${n}`);
    if (rec.error) say(`  ${builder.name}: ${rec.error}   (log: ${log})`);
  } finally {
    await builder.cleanup(st);
  }
  if (!rec.notes.length) delete rec.notes;
  return rec;
}

/**
 * Before a builder's run (after the previous one's root was removed or BuildKit's cache pruned):
 * the deletions written out and their inodes' cached table blocks dropped, so that no builder
 * pays for another's deletions on a journal-less ext4 (see lib/settle.mjs), then the programs
 * and the bench's context read back into the page cache.
 */
async function settle(bench) {
  programFiles ??= [...kilnProgramFiles(repoRoot), ...PEER_PROGRAM_FILES];
  const r = await settleDisk([...programFiles, bench.ctx]);
  settles.push(r);
  if (!r.dropped && settles.length === 1) say(`warning: the page cache is not dropped between runs (${r.reason}); a run after another builder's deletions may pay for them`);
}

/** Cold build + push to the bench registry, from a fresh primed root. */
async function measurePush(builder, bench, run, registry) {
  const st = await builder.newState(rootsDir);
  const log = join(logDir, `${bench.name}-${builder.name}-push${run}.log`);
  const rec = { builder: builder.name, run };
  try {
    await settle(bench);
    for (const base of bench.bases) await builder.prime(st, `${registry}/${BASES[base].ref}`, log);
    const r = await builder.build(st, { bench, push: true }, log);
    rec.result = { ms: r.ms, code: r.code, maxRssKb: r.maxRssKb, treeRssKb: r.treeRssKb, parts: r.parts };
    if (r.code !== 0) rec.error = errorLine(r.output);
    say(`${bench.name} · ${builder.name} · build+push ${run}: ${r.code === 0 ? secs(r.ms) : `FAILED: ${rec.error}`}${r.parts ? ` (build ${secs(r.parts.build)} + push ${secs(r.parts.push)})` : ''}`);
  } finally {
    await builder.cleanup(st);
  }
  return rec;
}

/**
 * Buildah (as root) keeps a blob-info cache in /var/lib/containers/cache whatever --root says.
 * If this run creates it, remove it at the end so the machine is left as it was.
 */
async function forgetBuildahBlobCache() {
  const dirs = ['/var/lib/containers', '/var/lib/containers/cache'].filter((d) => !existsSync(d));
  const file = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';
  const had = existsSync(file);
  return async () => {
    if (!had) await rm(file, { force: true });
    for (const d of dirs.reverse()) await rmdir(d).catch(() => {});
  };
}

main().then(
  async () => { await cleanup(); },
  async (e) => {
    if (e instanceof Interrupted || interrupted) {
      await cleanup();
      process.exit(130);
    }
    console.error(`bench: ${process.env.KILN_BENCH_DEBUG ? e.stack : e.message}`);
    killAll('SIGTERM');
    await cleanup();
    process.exit(1);
  },
);
