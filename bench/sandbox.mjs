// RUN sandbox benchmark: `npm run build && node bench/sandbox.mjs [--runs 30] [--mb 500] [--no-buildah]`.
// Per-RUN overhead of `RUN true` (overlay mount + bundle + runc + empty diff + cleanup), and a RUN
// writing MB of incompressible data committed as a layer; side by side with `buildah run` /
// `buildah commit` when Buildah is installed. The last line of output is JSON for bench/run.mjs.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { runSandbox } from '../dist/sandbox/index.js';
import { executeRun } from '../dist/steps/run.js';
import { Store } from '../dist/store/index.js';

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const RUNS = arg('runs', 30);
const MB = arg('mb', 500);
const withBuildah = !argv.includes('--no-buildah') && spawnSync('buildah', ['--version']).status === 0;

const work = mkdtempSync(join(process.env.KILN_BENCH_TMP ?? tmpdir(), 'kiln-bench-sandbox-'));
const rootfs = join(work, 'rootfs');

function busyboxRootfs(dir) {
  mkdirSync(join(dir, 'bin'), { recursive: true });
  copyFileSync('/usr/bin/busybox', join(dir, 'bin/busybox'));
  chmodSync(join(dir, 'bin/busybox'), 0o755);
  for (const a of execFileSync('/usr/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n')) {
    if (a && a !== 'busybox') symlinkSync('busybox', join(dir, 'bin', a));
  }
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\nnobody:x:65534:\napp:x:1000:\n');
  for (const d of ['tmp', 'root', 'proc', 'sys', 'dev']) mkdirSync(join(dir, d));
  chmodSync(join(dir, 'tmp'), 0o1777);
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], mean: s.reduce((a, b) => a + b, 0) / s.length, min: s[0], max: s[s.length - 1] };
};
const fmt = (ms) => `${ms.toFixed(1)} ms`;

const results = { runs: RUNS, mb: MB };
let store;
try {
  busyboxRootfs(rootfs);
  store = await Store.open(join(work, 'store'));
  const base = { store, lowerdirs: [rootfs], env: [], workdir: '/', network: 'host', mounts: [], layer: { compression: 'gzip' } };

  // warm-up: page cache, seccomp profile parse, overlay option probe
  for (let i = 0; i < 3; i++) await executeRun({ ...base, args: ['/bin/sh', '-c', 'true'] });

  const sandboxOnly = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await runSandbox({ storeRoot: store.root, lowerdirs: [rootfs], args: ['true'], env: [], workdir: '/', network: 'host' });
    sandboxOnly.push(performance.now() - t);
  }
  const step = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await executeRun({ ...base, args: ['/bin/sh', '-c', 'true'] });
    step.push(performance.now() - t);
  }
  const none = [];
  for (let i = 0; i < Math.min(RUNS, 10); i++) {
    const t = performance.now();
    await executeRun({ ...base, network: 'none', args: ['/bin/sh', '-c', 'true'] });
    none.push(performance.now() - t);
  }
  // the default network (own namespace + slirp4netns) against none and host, interleaved so load hits all alike
  const byNetwork = { default: [], none: [], host: [] };
  for (let i = 0; i < Math.min(RUNS, 20); i++) {
    for (const network of Object.keys(byNetwork)) {
      const t = performance.now();
      await runSandbox({ storeRoot: store.root, lowerdirs: [rootfs], args: ['true'], env: [], workdir: '/', network });
      byNetwork[network].push(performance.now() - t);
    }
  }
  results.kiln_network = Object.fromEntries(Object.entries(byNetwork).map(([k, v]) => [k, stats(v)]));
  console.log(`kiln   RUN true by network mode: ${Object.entries(results.kiln_network).map(([k, v]) => `${k} ${fmt(v.median)}`).join(', ')}`);
  const rt = [];
  for (let i = 0; i < Math.min(RUNS, 10); i++) {
    const t = performance.now();
    spawnSync('runc', ['--version']);
    rt.push(performance.now() - t);
  }
  results.kiln = { runTrueMs: stats(step), sandboxOnlyMs: stats(sandboxOnly), networkNoneMs: stats(none), runcVersionExecMs: stats(rt) };
  console.log(`kiln   RUN true ×${RUNS}: median ${fmt(results.kiln.runTrueMs.median)} (sandbox only ${fmt(results.kiln.sandboxOnlyMs.median)}, network none ${fmt(results.kiln.networkNoneMs.median)}; exec of "runc --version" ${fmt(results.kiln.runcVersionExecMs.median)})`);

  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 50);
  for (const compression of ['gzip', 'uncompressed']) {
    const t = performance.now();
    const r = await executeRun({ ...base, layer: { compression }, args: ['/bin/sh', '-c', `dd if=/dev/urandom of=/big bs=1M count=${MB} 2>/dev/null`] });
    const ms = performance.now() - t;
    results[`big_${compression}`] = { ms, layerBytes: r.layer?.size, cpuSeconds: r.usage.cpuSeconds, peakMemoryBytes: r.usage.peakMemoryBytes };
    console.log(`kiln   RUN writing ${MB} MB, ${compression}: ${(ms / 1000).toFixed(2)} s total (layer ${(r.layer.size / 1e6).toFixed(0)} MB; the RUN itself used ${r.usage.cpuSeconds.toFixed(2)} CPU s)`);
  }
  clearInterval(sampler);
  results.peakRssBytes = peakRss;
  console.log(`kiln   peak RSS during the big layers: ${(peakRss / 1e6).toFixed(0)} MB`);

  if (withBuildah) {
    const broot = join(work, 'buildah');
    const g = ['--root', join(broot, 'root'), '--runroot', join(broot, 'run'), '--storage-driver', 'overlay'];
    const b = (...a) => execFileSync('buildah', [...g, ...a], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    const ctr = b('from', 'scratch');
    b('copy', ctr, `${rootfs}/`, '/');
    // host network: buildah's default for root would create a bridge, which this project never does
    const brun = (cmd) => b('run', '--isolation', 'oci', '--network', 'host', ctr, '/bin/sh', '-c', cmd);
    for (let i = 0; i < 3; i++) brun('true');
    const times = [];
    for (let i = 0; i < RUNS; i++) {
      const t = performance.now();
      brun('true');
      times.push(performance.now() - t);
    }
    const t = performance.now();
    brun(`dd if=/dev/urandom of=/big bs=1M count=${MB} 2>/dev/null`);
    const runMs = performance.now() - t;
    const t2 = performance.now();
    b('commit', '--quiet', ctr, 'bench-big');
    const commitMs = performance.now() - t2;
    results.buildah = { runTrueMs: stats(times), bigRunMs: runMs, bigCommitMs: commitMs };
    console.log(`buildah run true ×${RUNS}: median ${fmt(results.buildah.runTrueMs.median)}`);
    console.log(`buildah RUN writing ${MB} MB: ${(runMs / 1000).toFixed(2)} s + commit ${(commitMs / 1000).toFixed(2)} s`);
    b('rm', '--all');
    spawnSync('buildah', [...g, 'rmi', '--all', '--force']);
    spawnSync('umount', ['-R', join(broot, 'root', 'overlay')], { stdio: 'ignore' });
  }
} finally {
  await store?.close();
  rmSync(work, { recursive: true, force: true });
}
console.log(JSON.stringify(results));
