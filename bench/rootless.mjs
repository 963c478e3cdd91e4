#!/usr/bin/env node
// Rootless against rootful kiln on two of the shared benches (many-steps: many small RUN/COPY
// steps; multistage: two CPU-bound stages in parallel), cold (fresh store) and warm (same store,
// nothing changed), plus the fixed cost of one command (`kiln images`). The runs alternate
// (rootful, rootless, rootless, rootful, …) so drift on a shared machine hits both; medians,
// min–max and the rootless ÷ rootful ratio are printed.
// Rootless runs as the account `kiln-rootless` with the subordinate range 1500000-1565535
// (made here when missing, as the rootless tests do), through setpriv with a login-like
// environment. Needs root, uidmap, slirp4netns, the Distribution registry and dist/ built.
// Usage: node bench/rootless.mjs [--runs N]
import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, chownSync, constants, cpSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sharedBenchDir } from './lib/contexts.mjs';
import { killAll, must, removeTree, run } from './lib/proc.mjs';
import { startRegistry } from './lib/registry-server.mjs';
import { median } from './lib/report.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(benchDir);
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : Number(process.env.KILN_BENCH_RUNS ?? 3);
const BENCHES = ['many-steps', 'multistage'];
const USER = 'kiln-rootless';
const SUB = '1500000-1565535';
const TIMEOUT = 20 * 60e3;

if (process.getuid?.() !== 0) {
  console.error('bench/rootless: run as root (it creates the rootless account and compares both modes)');
  process.exit(1);
}
if (!existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))) {
  console.error('bench/rootless: dist/ missing (npm run build)');
  process.exit(1);
}

const id = (flag) => {
  try {
    return Number(execFileSync('id', [flag, USER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    return undefined;
  }
};
if (id('-u') === undefined) execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', USER]);
for (const [file, flag] of [['/etc/subuid', '--add-subuids'], ['/etc/subgid', '--add-subgids']]) {
  if (!existsSync(file) || !readFileSync(file, 'utf8').split('\n').some((l) => l.startsWith(`${USER}:`))) execFileSync('usermod', [flag, SUB, USER]);
}
const uid = id('-u');
const gid = id('-g');

const work = join(benchDir, 'work', 'rootless');
await removeTree(work);
await mkdir(work, { recursive: true });
// the account must reach its store, the contexts and kiln itself
for (let p = work; p !== '/'; p = dirname(p)) chmodSync(p, statSync(p).mode | 0o001);

/** kiln as the account sees it: the checkout, or a world-readable copy when the checkout is private (under /root). */
function kilnForUser() {
  const bin = join(repoRoot, 'bin', 'kiln');
  try {
    for (let p = join(repoRoot, 'dist', 'cli', 'main.js'); p !== '/'; p = dirname(p)) {
      if ((statSync(p).mode & (p.endsWith('main.js') ? 0o004 : 0o001)) === 0) throw new Error('private');
    }
    accessSync(bin, constants.R_OK);
    return bin;
  } catch {
    const copy = join(work, 'app');
    for (const part of ['dist', 'bin', 'package.json', 'node_modules']) {
      if (existsSync(join(repoRoot, part))) cpSync(join(repoRoot, part), join(copy, part), { recursive: true, dereference: true });
    }
    execFileSync('chmod', ['-R', 'a+rX', copy]);
    return join(copy, 'bin', 'kiln');
  }
}
const userBin = kilnForUser();
const rootBin = join(repoRoot, 'bin', 'kiln');

const chownTree = (dir) => {
  chownSync(dir, uid, gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p);
    else chownSync(p, uid, gid);
  }
};

const registry = await startRegistry(join(work, 'registry'), 5002);
const cleanup = async () => {
  killAll();
  await registry.stop();
  await removeTree(work);
};
process.on('SIGINT', () => cleanup().finally(() => process.exit(130)));

/** One kiln command in a mode; `home` is the account's HOME (rootless) or unused (rootful). */
function kiln(mode, store, args, home) {
  const global = ['--root', store, '--insecure-registry', registry.host];
  if (mode === 'rootful') return run(process.execPath, [rootBin, ...global, ...args], { timeoutMs: TIMEOUT, measure: true });
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: home };
  return run('/usr/bin/setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--', process.execPath, userBin, ...global, ...args], { cwd: home, env, timeoutMs: TIMEOUT, measure: true });
}

try {
  // the base: busybox, built and pushed by kiln itself
  const baseCtx = join(work, 'base');
  await must('bash', [join(repoRoot, 'scripts', 'busybox-rootfs.sh'), baseCtx]);
  await writeFile(join(baseCtx, 'Dockerfile'), 'FROM scratch\nCOPY rootfs/ /\nENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\nCMD ["sh"]\n');
  await must(process.execPath, [rootBin, '--root', join(work, 'base-store'), '--insecure-registry', registry.host, 'build', '-t', `${registry.host}/busybox:latest`, '--push', '--progress', 'quiet', baseCtx], { timeoutMs: TIMEOUT });

  const shared = sharedBenchDir(repoRoot);
  const rows = [];
  const measure = async (label, fn) => {
    const times = { rootful: [], rootless: [] };
    for (let i = 0; i < RUNS; i++) {
      // ABBA: each mode goes first in half of the rounds
      const order = i % 2 === 0 ? ['rootful', 'rootless'] : ['rootless', 'rootful'];
      for (const mode of order) {
        await run('sync', []);
        times[mode].push(await fn(mode));
      }
    }
    const row = { what: label, runs: RUNS };
    for (const mode of ['rootful', 'rootless']) row[mode] = { median: median(times[mode]), min: Math.min(...times[mode]), max: Math.max(...times[mode]) };
    row.ratio = row.rootless.median / row.rootful.median;
    rows.push(row);
  };

  for (const name of BENCHES) {
    const ctx = join(work, `ctx-${name}`);
    cpSync(join(shared, name), ctx, { recursive: true });
    chownTree(ctx);
    const args = ['build', '-t', `bench/${name}`, '--build-arg', `REGISTRY=${registry.host}`, '--progress', 'plain', ctx];
    const stores = {};
    await measure(`${name} cold`, async (mode) => {
      const home = await mkdtemp(join(work, `${mode}-`));
      if (mode === 'rootless') chownSync(home, uid, gid);
      stores[mode] = { home, store: join(home, 'store') };
      const r = await kiln(mode, stores[mode].store, args, home);
      if (r.code !== 0) throw new Error(`${mode} ${name} cold failed: ${r.output.slice(-2000)}`);
      return r.ms;
    });
    // warm: the store of the last cold run of each mode, nothing changed
    await measure(`${name} warm`, async (mode) => {
      const r = await kiln(mode, stores[mode].store, args, stores[mode].home);
      if (r.code !== 0) throw new Error(`${mode} ${name} warm failed: ${r.output.slice(-2000)}`);
      if (!/CACHED/.test(r.output)) throw new Error(`${mode} ${name} warm run was not cached`);
      return r.ms;
    });
    if (name === BENCHES[0]) {
      // the fixed cost of any command: rootless re-executes itself in a user namespace (second node start, newuidmap)
      await measure('kiln images', async (mode) => {
        const r = await kiln(mode, stores[mode].store, ['images'], stores[mode].home);
        if (r.code !== 0) throw new Error(`${mode} images failed: ${r.output.slice(-2000)}`);
        return r.ms;
      });
    }
  }

  const s = (ms) => `${(ms / 1000).toFixed(2)} s`;
  console.log(`rootless ÷ rootful kiln, medians of ${RUNS} (min–max), runs alternated`);
  console.log('what                   rootful                    rootless                   ratio');
  for (const r of rows) {
    const cell = (m) => `${s(m.median)} (${s(m.min)}–${s(m.max)})`.padEnd(26);
    console.log(`${r.what.padEnd(22)} ${cell(r.rootful)} ${cell(r.rootless)} ${r.ratio.toFixed(2)}`);
  }
  await writeFile(join(benchDir, 'work', 'rootless-results.json'), `${JSON.stringify(rows, null, 2)}\n`);
  console.log(JSON.stringify(rows));
} finally {
  await cleanup();
}
