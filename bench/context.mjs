// Build-context benchmark: 20,000 small files (like shared/bench/copy-many).
// Measures content hashing cold (no hash cache), warm (cache file loaded,
// nothing changed), after one file changed, and producing the COPY entries.
// Run: npm run build && node bench/context.mjs [fileCount]
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { BuildContext } from '../dist/context/build-context.js';
import { HashCache } from '../dist/context/hash-cache.js';
import { planCopy } from '../dist/steps/copy.js';

const count = Number(process.argv[2] ?? 20000);
const root = mkdtempSync(join(tmpdir(), 'kiln-bench-ctx-'));
const ctxDir = join(root, 'ctx');
const cacheFile = join(root, 'cache', 'hashes.json');
const perDir = 100;
for (let i = 0; i < count; i++) {
  const dir = join(ctxDir, 'files', `d${Math.floor(i / perDir)}`);
  if (i % perDir === 0) mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `f${i}.txt`), `file ${i}\n`.repeat(80));
}

function time(label, fn) {
  const t0 = performance.now();
  const out = fn();
  const ms = performance.now() - t0;
  return { label, ms: Math.round(ms * 10) / 10, out };
}

const results = [];
const run = (label) => time(label, () => {
  const cache = HashCache.load(cacheFile);
  const digest = BuildContext.open(ctxDir).hashSelection(['.'].map(() => 'files'), cache);
  cache.save();
  return { digest, hits: cache.hits, misses: cache.misses };
});

// The floor on this machine: a bare readdir + lstat of every entry, no hashing.
const floor = () => time('floor: bare readdirSync + lstatSync walk', () => {
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
});
results.push(floor());
results.push(run('hash cold (no cache file)'));
results.push(run('hash warm (cache loaded, unchanged)'));
results.push(run('hash warm again'));
results.push(floor());
writeFileSync(join(ctxDir, 'files', 'd0', 'f0.txt'), 'changed\n');
results.push(run('hash after 1 file changed'));

const t0 = performance.now();
const cache = HashCache.load(cacheFile);
const copy = await planCopy({ sources: ['.'], dest: '/app', workdir: '/', from: BuildContext.open(ctxDir), hashCache: cache });
results.push({ label: 'COPY . /app: plan entries + input digest (warm cache)', ms: Math.round((performance.now() - t0) * 10) / 10, out: { entries: copy.entries.length } });

for (const r of results) console.log(`${r.label.padEnd(56)} ${String(r.ms).padStart(8)} ms  ${JSON.stringify(r.out)}`);
rmSync(root, { recursive: true, force: true });
