// Build-context benchmark: 20,000 small files (like shared/bench/copy-many).
// Content hashing with an empty hash cache ("cold"), with the cache file
// loaded and nothing changed ("warm"), after one file changed, and planning
// the COPY . /app entries. Medians of several runs, next to the machine's
// floor (a bare readdirSync + lstatSync walk of the same tree), because shared
// machines are noisy: compare ratios.
// Run: npm run build && node bench/context.mjs [fileCount] [runs]
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BuildContext } from '../dist/context/build-context.js';
import { HashCache } from '../dist/context/hash-cache.js';
import { planCopy } from '../dist/steps/copy.js';

const count = Number(process.argv[2] ?? 20000);
const runs = Number(process.argv[3] ?? 5);
const root = mkdtempSync(join(tmpdir(), 'kiln-bench-ctx-'));
const ctxDir = join(root, 'ctx');
const cacheFile = join(root, 'cache', 'hashes.json');
for (let i = 0; i < count; i++) {
  const dir = join(ctxDir, 'files', `d${String(i % 200).padStart(3, '0')}`);
  if (i < 200) mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `f${i}.txt`), `${i}:${'x'.repeat(50 + ((i * 7919) % 1500))}\n`);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
// Wall time and this process's CPU time (user + sys): on a loaded machine the
// CPU time is the steadier of the two.
async function measure(label, n, fn, before) {
  const times = [];
  const cpus = [];
  let out;
  for (let i = 0; i < n; i++) {
    if (before) before();
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    out = await fn();
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
  }
  const ms = Math.round(median(times) * 10) / 10;
  const cpu = Math.round(median(cpus) * 10) / 10;
  console.log(`${label.padEnd(56)} wall ${String(ms).padStart(7)} ms  cpu ${String(cpu).padStart(7)} ms  (median of ${n}) ${out ? JSON.stringify(out) : ''}`);
  return cpu;
}

const floor = () => {
  let n = 0;
  const rd = (p) => {
    for (const name of readdirSync(p)) {
      const st = lstatSync(`${p}/${name}`);
      n++;
      if (st.isDirectory()) rd(`${p}/${name}`);
    }
  };
  rd(join(ctxDir, 'files'));
  return { entries: n };
};
const hash = () => {
  const cache = HashCache.load(cacheFile);
  const digest = BuildContext.open(ctxDir).hashSelection(['files'], cache);
  cache.save();
  return { digest: digest.slice(0, 19), hits: cache.hits, misses: cache.misses };
};

const f1 = await measure('floor: bare readdirSync + lstatSync walk', runs, floor);
const cold = await measure('hash cold (empty hash cache)', Math.max(1, Math.min(3, runs)), hash, () => rmSync(cacheFile, { force: true }));
const warm = await measure('hash warm (cache file loaded, nothing changed)', runs, hash);
let k = 0;
const one = await measure('hash after 1 file changed', runs, hash, () => writeFileSync(join(ctxDir, 'files', 'd000', 'f0.txt'), `changed ${k++}\n`));
const hit = await measure('COPY . /app: input digest only (cache-hit path, warm)', runs, async () => {
  const cache = HashCache.load(cacheFile);
  const r = await planCopy({ sources: ['.'], dest: '/app', workdir: '/', from: BuildContext.open(ctxDir), hashCache: cache });
  return { digest: r.inputDigest.slice(0, 19) };
});
const plan = await measure('COPY . /app: digest + layer entries (miss path, warm)', runs, async () => {
  const cache = HashCache.load(cacheFile);
  const r = await planCopy({ sources: ['.'], dest: '/app', workdir: '/', from: BuildContext.open(ctxDir), hashCache: cache });
  return { entries: r.entries.length };
});
const f2 = await measure('floor again', runs, floor);
const fl = Math.min(f1, f2);
console.log(`\nCPU-time ratios to the floor: cold ${(cold / fl).toFixed(1)}x, warm ${(warm / fl).toFixed(1)}x, 1-file ${(one / fl).toFixed(1)}x, COPY hit ${(hit / fl).toFixed(1)}x, COPY miss ${(plan / fl).toFixed(1)}x`);
rmSync(root, { recursive: true, force: true });
