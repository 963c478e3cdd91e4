#!/usr/bin/env node
// N-instruction scaling (issue: cost must grow linearly with the instruction count).
// Generates Dockerfiles of N LABEL, ENV or `RUN true` lines, times one builder on each
// size and fits the exponent k of t ≈ c·N^k by least squares on log-log.
//
// As a module: `measureInstructionScaling({ builders, ... })` takes any number of builders
// (`{ name, build(ctxDir) → Promise<seconds> }`) so a side-by-side run can add BuildKit;
// `kilnBuilder()` is kiln's. As a script (also run by `npm run bench` as a micro-benchmark):
//   node bench/scaling.mjs [--kinds LABEL,ENV,RUN] [--sizes 1000,4000,16000] [--run-sizes 250,1000]
//                          [--base REF] [--runs N]
// RUN needs a shell: --base REF, else $KILN_BENCH_REGISTRY/busybox:latest, else Debian's static
// busybox copied into the context as /bin/sh (FROM scratch); without any RUN is skipped.
// The last line printed is the JSON result.
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorLine, run } from './lib/proc.mjs';
import { fitExponent, median, timeCommandCpu } from './lib/scaling-fit.mjs';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const KILN = join(repoRoot, 'bin', 'kiln');
const BUSYBOX = '/usr/bin/busybox';
/** `base` for RUN when no image is given: a static busybox from the context as /bin/sh. */
export const CONTEXT_SHELL = 'context-shell';

/** The Dockerfile text of `n` instructions of `kind` (LABEL, ENV or RUN) on `base`. */
export function instructionDockerfile(kind, n, base = 'scratch') {
  const lines = base === CONTEXT_SHELL ? ['FROM scratch', 'COPY sh /bin/sh'] : [`FROM ${base}`];
  for (let i = 0; i < n; i++) {
    if (kind === 'LABEL') lines.push(`LABEL l${i}=v${i}`);
    else if (kind === 'ENV') lines.push(`ENV E${i}=v${i}`);
    // distinct commands: a repeated one would still run, but distinct ones rule out any dedup
    else if (kind === 'RUN') lines.push(`RUN true ${i}`);
    else throw new Error(`unknown kind ${kind}`);
  }
  return `${lines.join('\n')}\n`;
}

/** kiln through bin/kiln on a store of its own, cache off (every step runs); wall and CPU seconds (kiln and its runc children). */
export function kilnBuilder({ root, insecureRegistries = [] } = {}) {
  return {
    name: 'kiln',
    async build(ctxDir) {
      const global = ['--root', root, ...insecureRegistries.flatMap((r) => ['--insecure-registry', r])];
      return timeCommandCpu(process.execPath, [KILN, ...global, 'build', '--progress', 'quiet', '--no-cache', ctxDir]);
    },
  };
}

/**
 * Times every builder on every kind and size (runs per point, median kept; builders
 * interleaved per run) and fits the exponent per builder and kind.
 * A builder's `build` resolves to wall seconds, or to `{ seconds, cpuSeconds }`.
 * Returns { points: [{builder, kind, n, seconds, cpuSeconds?}], fits: [{builder, kind, exponent, netExponent, cpuExponent?, netCpuExponent?}] }.
 * netExponent fits t − t(1 instruction): process start and setup no longer flatten the curve.
 * The CPU exponents (where the builder reports CPU) fit the same on CPU seconds, which
 * other jobs on a shared machine disturb far less than wall time.
 */
export async function measureInstructionScaling({
  builders, kinds = ['LABEL', 'ENV', 'RUN'], sizes = [1000, 4000, 16000], runSizes = [250, 1000], base, runs = 1, workDir, log = () => {},
}) {
  const dir = workDir ?? (await mkdtemp(join(tmpdir(), 'kiln-scaling-')));
  const points = [];
  const fits = [];
  try {
    for (const kind of kinds) {
      if (kind === 'RUN' && !base) {
        log('RUN skipped: no shell (give --base, set KILN_BENCH_REGISTRY or install busybox-static)');
        continue;
      }
      const from = kind === 'RUN' ? base : 'scratch';
      const ns = [1, ...(kind === 'RUN' ? runSizes : sizes)];
      const times = new Map();
      // a builder that fails at some N (BuildKit through dockerd 20.10 stops at 128 layers:
      // "max depth exceeded") is recorded as failed there and not run at larger N
      const failed = new Map();
      for (const n of ns) {
        const ctx = join(dir, `${kind}-${n}`);
        await mkdir(ctx, { recursive: true });
        await writeFile(join(ctx, 'Dockerfile'), instructionDockerfile(kind, n, from));
        if (from === CONTEXT_SHELL) await copyFile(BUSYBOX, join(ctx, 'sh'));
        // the first build of a base pulls it: not part of any measurement
        if (n === 1 && kind === 'RUN') for (const b of builders) await b.build(ctx);
        for (let r = 0; r < runs; r++) {
          for (const b of builders) {
            if (failed.has(b.name)) continue;
            let res;
            try {
              res = await b.build(ctx);
            } catch (e) {
              const why = String(e.message).split('\n')[0].slice(-200);
              failed.set(b.name, { n, why });
              log(`${b.name.padEnd(8)} ${kind.padEnd(5)} N=${String(n).padStart(6)}  FAILED: ${why}`);
              points.push({ builder: b.name, kind, n, failed: why });
              continue;
            }
            const t = typeof res === 'number' ? { seconds: res } : res;
            const key = `${b.name}/${n}`;
            times.set(key, [...(times.get(key) ?? []), t]);
          }
        }
        for (const b of builders) {
          const ts = times.get(`${b.name}/${n}`);
          if (!ts) continue;
          const seconds = median(ts.map((t) => t.seconds));
          const cpus = ts.map((t) => t.cpuSeconds).filter((c) => c !== undefined);
          const cpuSeconds = cpus.length === ts.length ? median(cpus) : undefined;
          log(`${b.name.padEnd(8)} ${kind.padEnd(5)} N=${String(n).padStart(6)}  ${seconds.toFixed(2)} s${cpuSeconds !== undefined ? `  (cpu ${cpuSeconds.toFixed(2)} s)` : ''}`);
          if (n > 1) points.push({ builder: b.name, kind, n, seconds, ...(cpuSeconds !== undefined ? { cpuSeconds } : {}) });
        }
      }
      for (const b of builders) {
        const mine = points.filter((p) => p.builder === b.name && p.kind === kind && p.failed === undefined);
        const ones = times.get(`${b.name}/1`);
        // a fit needs the 1-instruction build and two sizes
        if (!ones || mine.length < 2) {
          fits.push({ builder: b.name, kind, exponent: NaN, netExponent: NaN, oneInstructionSeconds: NaN, ...(failed.has(b.name) ? { failedAt: failed.get(b.name).n } : {}) });
          continue;
        }
        const base1 = median(ones.map((t) => t.seconds));
        const net = mine.map((p) => ({ n: p.n, seconds: Math.max(p.seconds - base1, 1e-3) }));
        const fit = { builder: b.name, kind, exponent: fitExponent(mine), netExponent: fitExponent(net), oneInstructionSeconds: base1 };
        if (mine.every((p) => p.cpuSeconds !== undefined) && ones.every((t) => t.cpuSeconds !== undefined)) {
          const cpu1 = median(ones.map((t) => t.cpuSeconds));
          fit.cpuExponent = fitExponent(mine.map((p) => ({ n: p.n, seconds: p.cpuSeconds })));
          fit.netCpuExponent = fitExponent(mine.map((p) => ({ n: p.n, seconds: Math.max(p.cpuSeconds - cpu1, 1e-3) })));
          fit.oneInstructionCpuSeconds = cpu1;
        }
        if (failed.has(b.name)) fit.failedAt = failed.get(b.name).n;
        fits.push(fit);
      }
    }
  } finally {
    if (!workDir) await rm(dir, { recursive: true, force: true });
  }
  return { points, fits };
}

const BUILDKIT_BUILD_BOUND_MS = 120e3;

/** BuildKit through a dockerd (DOCKER_HOST), as `npm run bench` starts it: the same Dockerfiles, cache off. */
export function buildkitBuilder({ dockerHost }) {
  return {
    name: 'buildkit',
    async build(ctxDir) {
      // BuildKit's Dockerfile front end is quadratic in ENV lines (1,000 took 5.3 s on 2026-12-07, 4,000 over two
      // minutes): a build is bounded, recorded as failed at that N and not run at larger N, so the micro-benchmark
      // ends within its own bound
      const r = await run('/usr/bin/docker', ['build', '--no-cache', '--network=host', '--quiet', ctxDir], {
        env: { ...process.env, DOCKER_HOST: dockerHost, DOCKER_BUILDKIT: '1' }, timeoutMs: BUILDKIT_BUILD_BOUND_MS,
      });
      if (r.timedOut) throw new Error(`docker build timed out after ${BUILDKIT_BUILD_BOUND_MS / 1000} s`);
      if (r.code !== 0) throw new Error(`docker build exited ${r.code}: ${errorLine(r.output)}`);
      return r.ms / 1000;
    },
  };
}

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => argv[++i];
    if (a === '--kinds') o.kinds = v().split(',');
    else if (a === '--sizes') o.sizes = v().split(',').map(Number);
    else if (a === '--run-sizes') o.runSizes = v().split(',').map(Number);
    else if (a === '--base') o.base = v();
    else if (a === '--runs') o.runs = Number(v());
    else throw new Error(`unknown option ${a}`);
  }
  return o;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const o = parseArgs(process.argv.slice(2));
  const registry = process.env.KILN_BENCH_REGISTRY;
  const base = o.base ?? (registry ? `${registry}/busybox:latest` : existsSync(BUSYBOX) ? CONTEXT_SHELL : undefined);
  const root = await mkdtemp(join(process.env.KILN_BENCH_TMP ?? tmpdir(), 'kiln-scaling-root-'));
  try {
    const result = await measureInstructionScaling({
      builders: [
        kilnBuilder({ root, insecureRegistries: registry ? [registry] : [] }),
        // side by side with BuildKit when `npm run bench` has its daemon up
        ...(process.env.KILN_BENCH_DOCKER_HOST ? [buildkitBuilder({ dockerHost: process.env.KILN_BENCH_DOCKER_HOST })] : []),
      ],
      ...o, base, log: (s) => console.log(s),
    });
    for (const f of result.fits) {
      const cpu = f.cpuExponent !== undefined ? `; on CPU seconds ${f.cpuExponent.toFixed(2)} (net ${f.netCpuExponent.toFixed(2)})` : '';
      if (Number.isNaN(f.exponent)) {
        console.log(`${f.builder} ${f.kind}: no fit${f.failedAt !== undefined ? ` (failed at N=${f.failedAt})` : ''}`);
        continue;
      }
      console.log(`${f.builder} ${f.kind}: fitted exponent ${f.exponent.toFixed(2)} (net of the 1-instruction build, ${f.oneInstructionSeconds.toFixed(2)} s: ${f.netExponent.toFixed(2)})${cpu}; goal ≤ 1.1`);
    }
    console.log(JSON.stringify(result));
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}
