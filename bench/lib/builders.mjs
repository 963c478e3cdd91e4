// The builders under test. Each one gets a private root per run (fresh cache), is primed
// with its base images (untimed), then built cold / warm / one-file-changed.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { errorLine, removeTree, run } from './proc.mjs';

const BUILD_TIMEOUT = 20 * 60e3;

/** kiln, run from this checkout: `node bin/kiln …` */
export function kilnBuilder({ repoRoot, registry, extraArgs = [] }) {
  // KILN_BENCH_KILN=/path/to/kiln measures another kiln executable (an installed one, say)
  const alt = process.env.KILN_BENCH_KILN;
  const bin = alt ?? join(repoRoot, 'bin', 'kiln');
  const node = alt ? alt : process.execPath;
  const pre = alt ? [] : [bin];
  const global = (root) => ['--root', root, '--insecure-registry', registry];
  const env = (st) => ({ ...process.env, KILN_ROOT: st.root, TMPDIR: st.tmp });
  return {
    name: 'kiln',
    label: 'kiln',
    async detect() {
      if (!existsSync(bin)) return { ok: false, reason: 'bin/kiln not found' };
      if (!alt && !existsSync(join(repoRoot, 'dist', 'cli', 'main.js'))) return { ok: false, reason: 'dist/ not built (npm run build)' };
      const v = await run(node, [...pre, '--version'], { timeoutMs: 30e3 });
      if (v.code !== 0) return { ok: false, reason: errorLine(v.output) };
      // commander lists the registered commands in the program's help
      const h = await run(node, [...pre, '--help'], { timeoutMs: 30e3 });
      const commands = new Set([...h.output.matchAll(/^\s{2}([a-z][\w-]*)\b/gm)].map((m) => m[1]));
      this.hasPull = commands.has('pull');
      if (!commands.has('build')) return { ok: false, version: v.output.trim(), reason: 'kiln build: no such command yet (not listed by `kiln --help`)' };
      return { ok: true, version: v.output.trim(), hasPull: this.hasPull };
    },
    async newState(parent) {
      const dir = await mkdtemp(join(parent, 'kiln-'));
      const st = { dir, root: join(dir, 'root'), tmp: join(dir, 'tmp') };
      await mkdir(st.tmp, { recursive: true });
      return st;
    },
    prime(st, ref, log) {
      if (this.hasPull === false) return Promise.resolve({ code: 1, ms: 0, output: 'kiln pull: no such command yet' });
      return run(node, [...pre, ...global(st.root), 'pull', ref], { env: env(st), log, timeoutMs: BUILD_TIMEOUT });
    },
    build(st, { bench, push }, log) {
      const tag = push ? `${registry}/bench/${bench.name}:kiln` : `bench/${bench.name}`;
      const args = [...pre, ...global(st.root), 'build', '-t', tag, '--build-arg', `REGISTRY=${registry}`,
        '--network', 'host', ...(push ? ['--push'] : []), ...extraArgs, '-f', join(bench.ctx, 'Dockerfile'), bench.ctx];
      return run(node, args, { cwd: bench.ctx, env: env(st), log, timeoutMs: BUILD_TIMEOUT, measure: true });
    },
    cleanup(st) {
      return removeTree(st.dir);
    },
    cachedSteps(output) {
      return (output.match(/\bCACHED\b/g) ?? []).length;
    },
  };
}

/** Buildah with a private storage root per run: `buildah bud --layers --network=host`. */
export function buildahBuilder({ registry, driver = 'overlay' }) {
  const global = (st) => ['--root', st.root, '--runroot', st.runroot, '--storage-driver', st.driver ?? driver];
  const env = (st) => ({ ...process.env, TMPDIR: st.tmp });
  const self = {
    name: 'buildah',
    label: 'buildah',
    driver,
    async detect() {
      const v = await run('buildah', ['--version'], { timeoutMs: 30e3 });
      if (v.code !== 0) return { ok: false, reason: v.code === 127 ? 'buildah not installed' : errorLine(v.output) };
      return { ok: true, version: v.output.trim() };
    },
    async newState(parent, drv) {
      const dir = await mkdtemp(join(parent, 'buildah-'));
      const st = { dir, root: join(dir, 'root'), runroot: join(dir, 'run'), tmp: join(dir, 'tmp'), driver: drv ?? self.driver };
      await mkdir(st.tmp, { recursive: true });
      return st;
    },
    prime(st, ref, log) {
      return run('buildah', [...global(st), 'pull', '--quiet', '--tls-verify=false', ref], { env: env(st), log, timeoutMs: BUILD_TIMEOUT });
    },
    build(st, { bench, push }, log) {
      const tag = `bench-${bench.name}`;
      const args = [...global(st), 'bud', '--layers', '--network=host', '--tls-verify=false',
        '--build-arg', `REGISTRY=${registry}`, '-t', tag, '-f', join(bench.ctx, 'Dockerfile'), bench.ctx];
      const opts = { cwd: bench.ctx, env: env(st), log, timeoutMs: BUILD_TIMEOUT, measure: true };
      if (!push) return run('buildah', args, opts);
      // build + push: Buildah compresses at push, so the figure is the sum of both commands
      return (async () => {
        const b = await run('buildah', args, opts);
        if (b.code !== 0) return b;
        const p = await run('buildah', [...global(st), 'push', '--tls-verify=false', tag, `docker://${registry}/bench/${bench.name}:buildah`], opts);
        return {
          ...p,
          ms: b.ms + p.ms,
          maxRssKb: Math.max(b.maxRssKb ?? 0, p.maxRssKb ?? 0) || null,
          treeRssKb: Math.max(b.treeRssKb ?? 0, p.treeRssKb ?? 0) || null,
          output: `${b.output}\n${p.output}`,
          parts: { build: b.ms, push: p.ms },
        };
      })();
    },
    async cleanup(st) {
      // release containers and mounts held by this private store, then delete it all
      await run('buildah', [...global(st), 'rm', '--all'], { env: env(st), timeoutMs: 120e3 });
      await run('buildah', [...global(st), 'rmi', '--all', '--force'], { env: env(st), timeoutMs: 300e3 });
      await removeTree(st.dir);
    },
    cachedSteps(output) {
      return (output.match(/Using cache/g) ?? []).length;
    },
    /**
     * Which storage driver works here: build `FROM busybox; RUN` with each candidate
     * and keep the first that succeeds (overlay is Buildah's default as root).
     */
    async pickDriver(parent, ref, candidates, log) {
      const notes = [];
      for (const drv of candidates) {
        const st = await self.newState(parent, drv);
        try {
          const ctx = join(st.dir, 'ctx');
          await mkdir(ctx);
          const { writeFile } = await import('node:fs/promises');
          await writeFile(join(ctx, 'Dockerfile'), `FROM ${ref}\nRUN echo probe > /probe && cat /probe\n`);
          const p = await self.prime(st, ref, log);
          const b = p.code === 0
            ? await run('buildah', [...global(st), 'bud', '--layers', '--network=host', '--tls-verify=false', '-t', 'probe', ctx], { env: env(st), log, timeoutMs: 300e3 })
            : p;
          if (b.code === 0) {
            self.driver = drv;
            return { driver: drv, notes };
          }
          notes.push(`${drv}: ${errorLine(b.output)}`);
        } finally {
          await self.cleanup(st);
        }
      }
      return { driver: null, notes };
    },
  };
  return self;
}

/**
 * BuildKit, as Debian's dockerd runs it (../shared/bench/peers/buildkit-up.sh starts it on a
 * private socket with no bridge; DOCKER_BUILDKIT=1 makes /usr/bin/docker use its built-in
 * BuildKit). BuildKit's cache lives in the daemon: a "fresh root" is a pruned build cache and
 * image store, so its cold build starts where kiln's and Buildah's do (base pulled, no cache).
 * Its memory is the daemon's, outside the client's process tree: peak RSS is not reported.
 */
export function buildkitBuilder({ registry, peersDir, peerDir }) {
  const docker = '/usr/bin/docker';
  let sock = null;
  const env = () => ({ ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_BUILDKIT: '1', PEER_DIR: peerDir, REGISTRY: registry });
  const self = {
    name: 'buildkit',
    label: 'BuildKit',
    async detect() {
      const up = await run('bash', [join(peersDir, 'buildkit-up.sh')], { env: { ...process.env, PEER_DIR: peerDir, REGISTRY: registry }, timeoutMs: 600e3 });
      if (up.code !== 0) return { ok: false, reason: `buildkit-up.sh: ${errorLine(up.output)}` };
      sock = up.output.trim().split('\n').pop().trim();
      const v = await run(docker, ['version', '--format', '{{.Server.Version}}'], { env: env(), timeoutMs: 30e3 });
      if (v.code !== 0) return { ok: false, reason: errorLine(v.output) };
      return { ok: true, version: `dockerd ${v.output.trim()} (built-in BuildKit)` };
    },
    dockerHost: () => `unix://${sock}`,
    async stop() {
      await run('bash', [join(peersDir, 'buildkit-down.sh')], { env: { ...process.env, PEER_DIR: peerDir }, timeoutMs: 120e3 });
    },
    async newState(parent) {
      // one daemon for all runs: empty its build cache and images so this run starts cold
      await run(docker, ['builder', 'prune', '--all', '--force'], { env: env(), timeoutMs: 300e3 });
      const imgs = await run(docker, ['images', '--quiet', '--no-trunc'], { env: env(), timeoutMs: 60e3 });
      const ids = [...new Set(imgs.output.split('\n').map((s) => s.trim()).filter(Boolean))];
      if (ids.length) await run(docker, ['rmi', '--force', ...ids], { env: env(), timeoutMs: 300e3 });
      const dir = await mkdtemp(join(parent, 'buildkit-'));
      return { dir };
    },
    prime(st, ref, log) {
      return run(docker, ['pull', '--quiet', ref], { env: env(), log, timeoutMs: BUILD_TIMEOUT });
    },
    build(st, { bench, push }, log) {
      const tag = push ? `${registry}/bench/${bench.name}:buildkit` : `bench/${bench.name}`;
      const args = ['build', '--network=host', '--progress=plain', '--build-arg', `REGISTRY=${registry}`, '-t', tag, '-f', join(bench.ctx, 'Dockerfile'), bench.ctx];
      const opts = { cwd: bench.ctx, env: env(), log, timeoutMs: BUILD_TIMEOUT, measure: true };
      if (!push) return run(docker, args, opts);
      // BuildKit with the docker driver keeps layers uncompressed in the daemon and compresses at push
      return (async () => {
        const b = await run(docker, args, opts);
        if (b.code !== 0) return b;
        const p = await run(docker, ['push', tag], opts);
        return { ...p, ms: b.ms + p.ms, maxRssKb: null, treeRssKb: null, output: `${b.output}\n${p.output}`, parts: { build: b.ms, push: p.ms } };
      })();
    },
    async cleanup(st) {
      await removeTree(st.dir);
    },
    cachedSteps(output) {
      return (output.match(/\bCACHED\b/g) ?? []).length;
    },
    retryOnError: (msg) => /no such file or directory/.test(msg) && /runc|exec/.test(msg),
    /** The client's RSS says nothing about the daemon's: leave memory out rather than report a misleading figure. */
    reportsMemory: false,
  };
  return self;
}
