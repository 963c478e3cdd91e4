#!/usr/bin/env node
// Two-platform build (linux/amd64 + linux/arm64) of a small program, kiln beside
// `buildah build --platform linux/amd64,linux/arm64 --manifest`, cold, each with a
// private store. Two variants of the same Dockerfile program:
//   emulated: the program runs in each target stage (arm64 under QEMU user mode);
//   cross:    it runs once in a FROM --platform=$BUILDPLATFORM stage, copied into each target.
// Needs root, buildah, the Distribution registry, binfmt_misc with qemu-aarch64 and Debian's
// arm64 busybox-static (scripts/install-debian-packages.sh bench sets all of these up).
// Usage: node bench/multiplatform.mjs [--runs N]   (prints a table with medians and ratios)
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './lib/report.mjs';
import { killAll, must, removeTree, run } from './lib/proc.mjs';
import { startRegistry } from './lib/registry-server.mjs';

const benchDir = dirname(fileURLToPath(import.meta.url));
const repoRoot = dirname(benchDir);
const runsArg = process.argv.indexOf('--runs');
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
const ARM64_BUSYBOX = `${process.env.KILN_TEST_FOREIGN_DIR ?? '/var/lib/kiln-test'}/arm64/busybox`;
const PLATFORMS = 'linux/amd64,linux/arm64';
const KILN = [process.execPath, join(repoRoot, 'bin', 'kiln')];
const TIMEOUT = 20 * 60e3;

// the "program": a shell loop that keeps one CPU busy, then prints what it ran on
const PROGRAM = 'i=0; while [ $i -lt 40000 ]; do i=$((i+1)); done; echo "$i on $(uname -m) for $TARGETARCH"';
const dockerfiles = (base) => ({
  emulated: `FROM ${base}\nARG TARGETARCH\nRUN ${PROGRAM} > /result\n`,
  cross: `FROM --platform=$BUILDPLATFORM ${base} AS build\nARG TARGETARCH\nRUN ${PROGRAM} > /result\nFROM ${base}\nCOPY --from=build /result /result\n`,
});

for (const [what, ok] of [['buildah', await run('buildah', ['--version']).then((r) => r.code === 0)], ['arm64 busybox', existsSync(ARM64_BUSYBOX)], ['dist/', existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))]]) {
  if (!ok) {
    console.error(`bench/multiplatform: ${what} missing (run scripts/install-debian-packages.sh bench and npm run build)`);
    process.exit(1);
  }
}

const work = join(benchDir, 'work', 'multiplatform');
await removeTree(work);
await mkdir(work, { recursive: true });
const registry = await startRegistry(join(work, 'registry'), 5001);
const cleanup = async () => {
  killAll();
  await registry.stop();
};
process.on('SIGINT', () => cleanup().finally(() => process.exit(130)));

try {
  // the base: busybox for both platforms as one index, built and pushed by kiln itself
  const baseCtx = join(work, 'base');
  await mkdir(baseCtx, { recursive: true });
  await must('bash', [join(repoRoot, 'scripts', 'busybox-rootfs.sh'), join(baseCtx, 'amd64')]);
  await must('bash', [join(repoRoot, 'scripts', 'busybox-rootfs.sh'), join(baseCtx, 'arm64')], { env: { ...process.env, BUSYBOX: ARM64_BUSYBOX } });
  await writeFile(join(baseCtx, 'Dockerfile'), 'FROM scratch\nARG TARGETARCH\nCOPY $TARGETARCH/rootfs/ /\nENV PATH=/usr/sbin:/usr/bin:/sbin:/bin\nCMD ["sh"]\n');
  const base = `${registry.host}/bench/busybox-multi:1`;
  await must(KILN[0], [KILN[1], '--root', join(work, 'kiln-base'), '--insecure-registry', registry.host, 'build', '--platform', PLATFORMS, '-t', base, '--push', '--progress', 'quiet', baseCtx], { timeoutMs: TIMEOUT });

  const builders = {
    kiln: (dir, ctx) => run(KILN[0], [KILN[1], '--root', join(dir, 'root'), '--insecure-registry', registry.host, 'build', '--platform', PLATFORMS, '-t', 'bench/mp:1', '--progress', 'plain', ctx], { timeoutMs: TIMEOUT, measure: true }),
    buildah: (dir, ctx) => run('buildah', ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), 'build', '--platform', PLATFORMS, '--manifest', 'bench-mp', '--tls-verify=false', '--network=host', ctx], { timeoutMs: TIMEOUT, measure: true }),
  };
  const rows = [];
  for (const [variant, text] of Object.entries(dockerfiles(base))) {
    const ctx = join(work, `ctx-${variant}`);
    await mkdir(ctx, { recursive: true });
    await writeFile(join(ctx, 'Dockerfile'), text);
    const times = {};
    for (const [name, buildFn] of Object.entries(builders)) {
      times[name] = [];
      for (let i = 0; i < RUNS; i++) {
        const dir = await mkdtemp(join(work, `${name}-`));
        await run('sync', []);
        const r = await buildFn(dir, ctx);
        if (r.code !== 0) throw new Error(`${name} ${variant} failed: ${r.output.slice(-2000)}`);
        times[name].push(r.ms);
        if (name === 'buildah') {
          await run('buildah', ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), 'rm', '--all']);
          await run('buildah', ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), 'rmi', '--all', '--force']);
        }
        await removeTree(dir);
      }
    }
    const k = median(times.kiln);
    const b = median(times.buildah);
    rows.push({ variant, kiln: k, buildah: b, ratio: k / b });
  }
  console.log(`two-platform build (${PLATFORMS}), cold, median of ${RUNS}`);
  console.log('variant    kiln       buildah    kiln/buildah');
  for (const r of rows) console.log(`${r.variant.padEnd(10)} ${(r.kiln / 1000).toFixed(2).padStart(6)} s   ${(r.buildah / 1000).toFixed(2).padStart(6)} s   ${r.ratio.toFixed(2)}`);
  await writeFile(join(work, 'results.json'), `${JSON.stringify(rows, null, 2)}\n`);
} finally {
  await cleanup();
}
