// Layer benchmark: `npm run build && node bench/layer.mjs [--mb 500] [--files 20000] [--runs 5] [--only REGEX]`.
// Prints MB/s of writeLayer for a large incompressible file and for many small files, and of
// extractLayer for the many-small-files layer (median of --runs extractions), with wall
// time, CPU time (less sensitive to other load on the machine) and peak RSS. Each case runs in
// its own process so peak RSS is per case.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { entriesFromDirectory, extractLayer, layerWorkers, writeLayer } from '../dist/layer/index.js';

/** CPU seconds of finished child processes (the zstd CLI), from /proc: cutime + cstime. */
function childrenCpu() {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** CPU seconds of the main thread alone (utime + stime of its task), from /proc. */
function mainThreadCpu() {
  const f = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MB = arg('mb', 500);
const FILES = arg('files', 20000);
const RUNS = arg('runs', 5);

/** A minimal BlobStore: streams to a file and hashes, like the real store minus fsync/rename. */
function fileStore(dir) {
  let n = 0;
  return {
    async writeBlob(data) {
      const path = join(dir, `blob-${n++}`);
      const out = createWriteStream(path);
      const h = createHash('sha256');
      let size = 0;
      for await (const c of data) {
        h.update(c);
        size += c.length;
        if (!out.write(c)) await new Promise((r) => out.once('drain', r));
      }
      out.end();
      await finished(out);
      rmSync(path);
      return { digest: `sha256:${h.digest('hex')}`, size };
    },
  };
}

/** 32 MiB of the machine's own executables and libraries: what a RUN that installs packages writes. */
function realPool() {
  const pool = Buffer.alloc(32 << 20);
  let n = 0;
  const walk = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      if (n >= pool.length) return;
      const p = join(dir, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (st.isFile() && st.size > 0) n += readFileSync(p).copy(pool, n);
    }
  };
  for (const d of ['/usr/bin', '/usr/lib/x86_64-linux-gnu', '/usr/lib', '/usr/share']) walk(d);
  return pool;
}

function randomStream(total, pool = randomBytes(16 << 20)) {
  // 16 MiB of random bytes is larger than any compressor window: stays incompressible.
  let left = total;
  return new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (left === 0) return this.push(null);
      const n = Math.min(left, 1 << 20);
      const off = (total - left) % pool.length; // chunks are 1 MiB and the pool a multiple of it
      left -= n;
      this.push(pool.subarray(off, off + n));
    },
  });
}

const CASES = [
  ['big', 'gzip (default: level 1, parallel, stored when incompressible)', {}],
  ['big', 'gzip level 6', { compressionLevel: 6 }],
  ['big', 'zstd -3 -T0', { compression: 'zstd' }],
  ['big', 'uncompressed', { compression: 'uncompressed' }],
  ['real', 'gzip (default level 1)', {}],
  ['real', 'zstd -3 -T0', { compression: 'zstd' }],
  ['small', 'gzip', {}],
  ['small', 'uncompressed', { compression: 'uncompressed' }],
  ['extract', 'extractLayer, gzip layer', {}],
];

const caseArg = process.argv.indexOf('--case');
const only = process.argv.indexOf('--only') > 0 ? new RegExp(process.argv[process.argv.indexOf('--only') + 1]) : undefined;
if (caseArg < 0) {
  // Parent: one child per case; the small-file tree is made once and shared.
  const root = mkdtempSync(join(tmpdir(), 'kiln-bench-layer-'));
  const ctx = join(root, 'ctx');
  let bytes = 0;
  for (let i = 0; i < FILES; i++) {
    const dir = join(ctx, `d${i % 100}`);
    if (i < 100) mkdirSync(dir, { recursive: true });
    const body = Buffer.from(`file ${i}\n`.repeat(1 + (i % 170)));
    bytes += body.length;
    writeFileSync(join(dir, `f${i}.txt`), body);
  }
  const rows = [];
  try {
    for (let i = 0; i < CASES.length; i++) {
      if (only && !only.test(`${CASES[i][0]} ${CASES[i][1]}`)) continue;
      const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--case', String(i), '--mb', String(MB), '--files', String(FILES), '--ctx', ctx, '--bytes', String(bytes), '--runs', String(RUNS)], { encoding: 'utf8' });
      rows.push(JSON.parse(out));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  console.table(rows);
  const load = (await import('node:os')).loadavg()[0].toFixed(1);
  console.log(`load average during the run: ${load} (${(await import('node:os')).availableParallelism()} cores); CPU seconds = user + system of the process, its worker threads and the zstd child`);
} else {
  const [kind, label, opts] = CASES[Number(process.argv[caseArg + 1])];
  if (kind === 'extract') {
    await benchExtract(label, opts);
    process.exit(0);
  }
  const root = mkdtempSync(join(tmpdir(), 'kiln-bench-layer-'));
  const store = fileStore(root);
  const big = Math.floor((MB * 1e6) / (1 << 20)) * (1 << 20);
  const ctxArg = process.argv[process.argv.indexOf('--ctx') + 1];
  const bytes = kind === 'small' ? Number(process.argv[process.argv.indexOf('--bytes') + 1]) : big;
  const pool = kind === 'real' ? realPool() : undefined;
  const entries = kind === 'small' ? entriesFromDirectory(ctxArg) : [{ path: 'big.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: big, open: () => randomStream(big, pool) }];
  const cpu0 = process.cpuUsage();
  const main0 = mainThreadCpu();
  const child0 = childrenCpu();
  const t = performance.now();
  const w = await writeLayer(entries, store, opts);
  const s = (performance.now() - t) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const mainCpu = mainThreadCpu() - main0;
  const cpuAll = (cpu.user + cpu.system) / 1e6 + childrenCpu() - child0;
  await layerWorkers().close();
  rmSync(root, { recursive: true, force: true });
  process.stdout.write(
    JSON.stringify({
      bench: kind === 'small' ? `${FILES} small files (${(bytes / 1e6).toFixed(1)} MB), ${label}` : `${MB} MB ${kind === 'big' ? 'random' : 'of /usr binaries'}, ${label}`,
      'wall s': s.toFixed(2),
      'MB/s': (bytes / 1e6 / s).toFixed(0),
      'CPU s': cpuAll.toFixed(2),
      'main-thread CPU s': mainCpu.toFixed(2),
      // On an otherwise idle machine the run takes about the larger of the main thread's CPU time
      // and the total CPU time spread over the cores.
      'idle-machine estimate s': Math.max(mainCpu, cpuAll / availableParallelism()).toFixed(2),
      ratio: (w.size / w.uncompressedSize).toFixed(3),
      'peak RSS MB': (process.resourceUsage().maxRSS / 1024).toFixed(0),
    }),
  );
}

/**
 * Extracts the small-file layer RUNS times into fresh directories and reports the median run:
 * extraction of many small files is dominated by file creation, which varies with what the disk
 * is doing, so one run says little. The trees are removed only at the end: ext4 skips inodes
 * deleted in the last few seconds when allocating (recently_deleted, a scan whose cost grows
 * with the number of such inodes), so deleting between runs would mostly measure that.
 */
async function benchExtract(label, opts) {
  const ctxArg = process.argv[process.argv.indexOf('--ctx') + 1];
  const bytes = Number(process.argv[process.argv.indexOf('--bytes') + 1]);
  const root = mkdtempSync(join(tmpdir(), 'kiln-bench-extract-'));
  const blob = join(root, 'layer');
  const keep = {
    async writeBlob(data) {
      const out = createWriteStream(blob);
      let size = 0;
      for await (const c of data) {
        size += c.length;
        if (!out.write(c)) await new Promise((r) => out.once('drain', r));
      }
      out.end();
      await finished(out);
      return { digest: 'sha256:0', size };
    },
  };
  const w = await writeLayer(entriesFromDirectory(ctxArg), keep, opts);
  const runs = [];
  for (let i = 0; i < RUNS; i++) {
    const dest = join(root, `x${i}`);
    const cpu0 = process.cpuUsage();
    const main0 = mainThreadCpu();
    const t = performance.now();
    await extractLayer(createReadStream(blob), w.mediaType, dest);
    const s = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpu0);
    runs.push({ s, cpu: (cpu.user + cpu.system) / 1e6, main: mainThreadCpu() - main0 });
  }
  await layerWorkers().close();
  rmSync(root, { recursive: true, force: true });
  const median = (f) => runs.map(f).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
  const s = median((r) => r.s);
  process.stdout.write(
    JSON.stringify({
      bench: `${FILES} small files (${(bytes / 1e6).toFixed(1)} MB), ${label}, median of ${RUNS}`,
      'wall s': s.toFixed(2),
      'MB/s': (bytes / 1e6 / s).toFixed(0),
      'CPU s': median((r) => r.cpu).toFixed(2),
      'main-thread CPU s': median((r) => r.main).toFixed(2),
      'idle-machine estimate s': '',
      ratio: `runs: ${runs.map((r) => r.s.toFixed(2)).join(' ')}`,
      'peak RSS MB': (process.resourceUsage().maxRSS / 1024).toFixed(0),
    }),
  );
}
