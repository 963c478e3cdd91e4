// Registry benchmark: `npm run build && node bench/registry.mjs [--mb 500] [--runs 3]`.
// Push and pull of a ~500 MB image (incompressible layers) against the loopback
// Distribution registry, kiln side by side with `skopeo copy`, reported as
// ratios (goal: kiln ≤ 1.0× skopeo) with each tool's peak RSS (goal: flat in
// blob size). Each operation runs in its own process after a `sync`; kiln's
// times include Node's start-up and the store's fsync of every blob (skopeo
// does not fsync). Under `npm run bench` the harness passes KILN_BENCH_REGISTRY,
// KILN_BENCH_TMP and KILN_BENCH_RUNS; standalone it starts its own registry.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createGzip } from 'node:zlib';
import { pull, push } from '../dist/registry/index.js';
import { Store } from '../dist/store/store.js';
import { MediaType } from '../dist/image/media-types.js';
import { run } from './lib/proc.mjs';
import { startRegistry } from './lib/registry-server.mjs';

const SELF = fileURLToPath(import.meta.url);
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};

// ---- child mode: one kiln operation in its own process, so its peak RSS is its own
const op = arg('op');
if (op) {
  const t0 = performance.now();
  const store = await Store.open(arg('root'));
  try {
    if (op === 'push') {
      // hide the blob origins so every run uploads the bytes (a mount would make it free)
      const noOrigins = new Proxy(store, {
        get(target, prop) {
          if (prop === 'blobOrigins' || prop === 'recordBlobOrigin') return undefined;
          const v = Reflect.get(target, prop, target);
          return typeof v === 'function' ? v.bind(target) : v;
        },
      });
      await push(noOrigins, arg('src'), arg('dest'));
    } else {
      await pull(store, arg('ref'), { platform: 'linux/amd64' });
    }
  } finally {
    await store.close();
  }
  console.log(JSON.stringify({ ms: performance.now() - t0 }));
  process.exit(0);
}

// ---- harness
const MB = Number(arg('mb', process.env.KILN_BENCH_MB ?? 500));
const RUNS = Number(arg('runs', process.env.KILN_BENCH_RUNS ?? 3));
const tmp = process.env.KILN_BENCH_TMP ? await mkdtemp(join(process.env.KILN_BENCH_TMP, 'registry-')) : await mkdtemp(join(tmpdir(), 'kiln-bench-registry-'));
let registry = process.env.KILN_BENCH_REGISTRY;
let stopRegistry = async () => {};
if (!registry) {
  const r = await startRegistry(join(tmp, 'registry'));
  registry = r.host;
  stopRegistry = r.stop;
}

// an interrupted run must not leave its registry behind
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    stopRegistry().finally(() => rm(tmp, { recursive: true, force: true })).finally(() => process.exit(130));
  });
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;

/** Random bytes in 1 MiB chunks: incompressible, never all in memory. */
function randomStream(bytes) {
  return Readable.from((function* () {
    for (let left = bytes; left > 0; left -= 1 << 20) yield randomBytes(Math.min(left, 1 << 20));
  })());
}

async function makeImage(root, mb) {
  const store = await Store.open(root);
  try {
    // a few layers of different sizes, like a real image: one big, some medium, one small
    const parts = [0.5, 0.3, 0.15, 0.05].map((f) => Math.max(1, Math.round(mb * f)) << 20);
    const layers = [];
    for (const part of parts) {
      // real gzip (level 0: stored blocks, incompressible content), or skopeo would compress the layers on the way
      const { digest, size } = await store.writeBlob(randomStream(part).pipe(createGzip({ level: 0 })));
      layers.push({ mediaType: MediaType.OCI_LAYER_GZIP, digest, size });
    }
    const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } };
    const cfg = await store.putBytes(Buffer.from(JSON.stringify(config)));
    const manifest = { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: cfg.digest, size: cfg.size }, layers };
    const m = await store.putBytes(Buffer.from(JSON.stringify(manifest)));
    await store.setRef('bench-src', { mediaType: MediaType.OCI_MANIFEST, digest: m.digest, size: m.size });
    return layers.reduce((a, l) => a + l.size, 0);
  } finally {
    await store.close();
  }
}

async function timed(cmd, args, env = process.env) {
  // start every measurement with no dirty pages left by the previous one (a push leaves ~500 MB to write back)
  await run('sync', []);
  const r = await run(cmd, args, { measure: true, timeoutMs: 15 * 60e3, log: join(tmp, 'bench.log'), env });
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.output.slice(-2000)}`);
  return { ms: r.ms, rssKb: r.maxRssKb ?? r.treeRssKb };
}

const kiln = (args) => timed(process.execPath, [SELF, ...args]);
/**
 * skopeo keeps a blob-info cache (as root in /var/lib/containers/cache) and
 * would mount blobs it pushed in an earlier run instead of uploading them; kiln
 * is run without its origin records, so skopeo gets an empty cache each run:
 * a private tmpfs over the cache dir as root, a fresh XDG_DATA_HOME otherwise.
 */
let skopeoRun = 0;
async function skopeo(args) {
  // --preserve-digests: skopeo must move the same bytes kiln does, not convert them
  const copyArgs = ['copy', '--quiet', '--preserve-digests', ...args];
  if (process.getuid?.() === 0 && existsSync('/usr/bin/unshare')) {
    const cache = '/var/lib/containers/cache';
    return timed('/usr/bin/unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mkdir -p ${cache} && mount -t tmpfs none ${cache} && exec skopeo "$@"`, 'sh', ...copyArgs]);
  }
  const xdg = join(tmp, `skopeo-data-${skopeoRun++}`);
  return timed('skopeo', copyArgs, { ...process.env, XDG_DATA_HOME: xdg });
}

const srcRoot = join(tmp, 'src');
try {
  console.log(`registry benchmark: ${MB} MB image, ${RUNS} runs, registry ${registry}`);
  const bytes = await makeImage(srcRoot, MB);
  const res = { kilnPush: [], skopeoPush: [], kilnPull: [], skopeoPull: [], rss: { kilnPush: 0, skopeoPush: 0, kilnPull: 0, skopeoPull: 0 } };
  const keep = (k, r) => {
    res[k].push(r.ms);
    res.rss[k] = Math.max(res.rss[k], r.rssKb ?? 0);
  };
  for (let i = 0; i < RUNS; i++) {
    const tag = `${process.pid}-${i}`;
    const kRepo = `${registry}/bench/kiln-${tag}:1`;
    const sRepo = `${registry}/bench/skopeo-${tag}:1`;
    // alternate who goes first so caches favour neither
    const pushes = [
      async () => keep('kilnPush', await kiln(['--op', 'push', '--root', srcRoot, '--src', 'bench-src', '--dest', kRepo])),
      async () => keep('skopeoPush', await skopeo(['--dest-tls-verify=false', `oci:${srcRoot}:bench-src`, `docker://${sRepo}`])),
    ];
    for (const f of i % 2 ? pushes.reverse() : pushes) await f();
    const kDest = join(tmp, `kiln-pull-${i}`);
    const sDest = join(tmp, `skopeo-pull-${i}`);
    const pulls = [
      async () => keep('kilnPull', await kiln(['--op', 'pull', '--root', kDest, '--ref', kRepo])),
      async () => keep('skopeoPull', await skopeo(['--src-tls-verify=false', `docker://${kRepo}`, `oci:${sDest}:x`])),
    ];
    for (const f of i % 2 ? pulls.reverse() : pulls) await f();
    await rm(kDest, { recursive: true, force: true });
    await rm(sDest, { recursive: true, force: true });
    console.log(`run ${i + 1}: push kiln ${secs(res.kilnPush[i])} skopeo ${secs(res.skopeoPush[i])}; pull kiln ${secs(res.kilnPull[i])} skopeo ${secs(res.skopeoPull[i])}`);
  }
  const m = Object.fromEntries(['kilnPush', 'skopeoPush', 'kilnPull', 'skopeoPull'].map((k) => [k, median(res[k])]));
  const pushRatio = m.kilnPush / m.skopeoPush;
  const pullRatio = m.kilnPull / m.skopeoPull;
  const mbps = (ms) => `${(bytes / 1048576 / (ms / 1000)).toFixed(0)} MB/s`;
  const rss = (kb) => (kb ? `${(kb / 1024).toFixed(0)} MB` : 'n/a');
  console.log('');
  console.log('| op   | kiln (median) | skopeo (median) | kiln / skopeo | kiln peak RSS | skopeo peak RSS |');
  console.log('|------|---------------|-----------------|---------------|---------------|-----------------|');
  console.log(`| push | ${secs(m.kilnPush)} (${mbps(m.kilnPush)}) | ${secs(m.skopeoPush)} (${mbps(m.skopeoPush)}) | ${pushRatio.toFixed(2)}× | ${rss(res.rss.kilnPush)} | ${rss(res.rss.skopeoPush)} |`);
  console.log(`| pull | ${secs(m.kilnPull)} (${mbps(m.kilnPull)}) | ${secs(m.skopeoPull)} (${mbps(m.skopeoPull)}) | ${pullRatio.toFixed(2)}× | ${rss(res.rss.kilnPull)} | ${rss(res.rss.skopeoPull)} |`);
  console.log(`goal kiln ≤ 1.0× skopeo: push ${pushRatio <= 1 ? 'met' : 'NOT met'}, pull ${pullRatio <= 1 ? 'met' : 'NOT met'}`);
  console.log(JSON.stringify({ bench: 'registry', mb: bytes / 1048576, runs: RUNS, medianMs: m, pushRatio, pullRatio, peakRssKb: res.rss }));
} finally {
  await stopRegistry();
  await rm(tmp, { recursive: true, force: true });
}
