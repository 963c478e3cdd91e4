#!/usr/bin/env node
// Many-files COPY scaling: `COPY . /app` of 20k → 100k small files, kiln (cold store, so every
// file is hashed and written into the layer) against `tar c | sha256sum` over the same tree
// (the floor: one read of every file, one stream, one hash). Fits t ≈ c·N^k for both.
//
// A third side, `nodeFloor`, makes the same per-file system calls as kiln from Node and does
// nothing else: kiln ÷ node floor is kiln's own overhead, node floor ÷ tar the price of Node's fs
// API (a Stats object per lstat and fstat) over C.
//
// As a module: `measureFileScaling({ sizes, builders })`; `kilnCopyBuilder()`, `tarFloor` and
// `nodeFloor` are the sides run here. As a script (also run by `npm run bench`):
//   node bench/scaling-files.mjs [--sizes 20000,50000,100000] [--runs N]
// The last line printed is the JSON result.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fitExponent, median, timeCommand, timeCommandCpu } from './lib/scaling-fit.mjs';

const repoRoot = dirname(dirname(fileURLToPath(import.meta.url)));
const KILN = join(repoRoot, 'bin', 'kiln');

/** Writes `n` small files (100 per directory, 20–600 bytes) under `dir/files`, plus the Dockerfile. */
export async function makeFilesContext(dir, n) {
  await mkdir(dir, { recursive: true });
  for (let d = 0; d * 100 < n; d++) {
    const sub = join(dir, 'files', `d${String(d).padStart(4, '0')}`);
    await mkdir(sub, { recursive: true });
    const writes = [];
    for (let i = d * 100; i < Math.min(n, (d + 1) * 100); i++) writes.push(writeFile(join(sub, `f${i}`), `${i}:${'x'.repeat(20 + ((i * 7919) % 580))}\n`));
    await Promise.all(writes);
  }
  await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY files /app\n');
}

/**
 * kiln building `COPY files /app` on a fresh store each time: no hash cache, no layer cache.
 * Its peak resident memory (GNU time, when there) is kept per size in `peakRssKb`.
 */
export function kilnCopyBuilder({ workDir }) {
  let k = 0;
  const peakRssKb = new Map();
  return {
    name: 'kiln',
    peakRssKb,
    async build(ctxDir) {
      const root = join(workDir, `root-${k++}`);
      try {
        const r = await timeCommandCpu(process.execPath, [KILN, '--root', root, 'build', '--progress', 'quiet', '--no-cache', ctxDir]);
        if (r.maxRssKb !== undefined) peakRssKb.set(ctxDir, Math.max(peakRssKb.get(ctxDir) ?? 0, r.maxRssKb));
        return r.seconds;
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    },
  };
}

/** `tar c files | sha256sum` in the context: the floor any content-addressed COPY pays. */
export const tarFloor = {
  name: 'tar|sha256sum',
  build: (ctxDir) => timeCommand('bash', ['-c', 'set -o pipefail; tar c files | sha256sum >/dev/null'], { cwd: ctxDir }),
};

/**
 * The same tree's per-file calls made from Node with no layer, store or cache (see
 * lib/node-files-floor.mjs): how close kiln could get while it reads files through Node's fs API.
 */
export const nodeFloor = {
  name: 'node floor',
  build: (ctxDir) => timeCommand(process.execPath, [join(repoRoot, 'bench', 'lib', 'node-files-floor.mjs'), 'files'], { cwd: ctxDir }),
};

/**
 * Returns { points: [{builder, n, seconds, peakRssKb?}], fits: [{builder, exponent}], ratios: [{n, ratio}] }
 * (ratio: kiln ÷ first other builder; peakRssKb: the largest over the runs, for a builder that measures it).
 */
export async function measureFileScaling({ sizes = [20000, 50000, 100000], builders, runs = 1, workDir, log = () => {} }) {
  const dir = workDir ?? (await mkdtemp(join(tmpdir(), 'kiln-files-')));
  const points = [];
  try {
    const bs = builders ?? [kilnCopyBuilder({ workDir: dir }), tarFloor];
    for (const n of sizes) {
      const ctx = join(dir, `ctx-${n}`);
      await makeFilesContext(ctx, n);
      const times = new Map();
      for (let r = 0; r < runs; r++) for (const b of bs) times.set(b.name, [...(times.get(b.name) ?? []), await b.build(ctx)]);
      for (const b of bs) {
        const seconds = median(times.get(b.name));
        const rss = b.peakRssKb?.get(ctx);
        log(`${b.name.padEnd(14)} N=${String(n).padStart(6)}  ${seconds.toFixed(2)} s${rss ? `  peak RSS ${Math.round(rss / 1024)} MiB` : ''}`);
        points.push({ builder: b.name, n, seconds, ...(rss ? { peakRssKb: rss } : {}) });
      }
      await rm(ctx, { recursive: true, force: true });
    }
    const fits = bs.map((b) => ({ builder: b.name, exponent: fitExponent(points.filter((p) => p.builder === b.name)) }));
    const ratios = bs.length > 1
      ? sizes.map((n) => ({ n, ratio: points.find((p) => p.builder === bs[0].name && p.n === n).seconds / points.find((p) => p.builder === bs[1].name && p.n === n).seconds }))
      : [];
    return { points, fits, ratios };
  } finally {
    if (!workDir) await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const argv = process.argv.slice(2);
  const opt = (name) => {
    const i = argv.indexOf(name);
    return i === -1 ? undefined : argv[i + 1];
  };
  const sizes = opt('--sizes')?.split(',').map(Number);
  const runs = opt('--runs') ? Number(opt('--runs')) : 1;
  const workDir = await mkdtemp(join(process.env.KILN_BENCH_TMP ?? tmpdir(), 'kiln-files-'));
  try {
    const result = await measureFileScaling({ ...(sizes ? { sizes } : {}), runs, workDir, builders: [kilnCopyBuilder({ workDir }), tarFloor, nodeFloor], log: (s) => console.log(s) });
    for (const f of result.fits) console.log(`${f.builder}: fitted exponent ${f.exponent.toFixed(2)}`);
    const at = (b, n) => result.points.find((p) => p.builder === b && p.n === n).seconds;
    for (const r of result.ratios) {
      const floor = at(nodeFloor.name, r.n);
      console.log(`N=${r.n}: kiln ÷ tar|sha256sum = ${r.ratio.toFixed(2)} (goal ≤ 2); node floor ÷ tar|sha256sum = ${(floor / at(tarFloor.name, r.n)).toFixed(2)}; kiln ÷ node floor = ${(at('kiln', r.n) / floor).toFixed(2)}`);
    }
    console.log(JSON.stringify(result));
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
