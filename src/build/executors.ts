import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { Digest } from '../image/digest.js';
import type { LayerRef } from '../image/image.js';
import type { Platform } from '../image/types.js';
import { formatPlatform } from '../image/platform.js';
import type { Store } from '../store/store.js';
import { KilnError, RunFailedError } from '../errors/index.js';
import type { Heredoc, RunMount } from '../frontend/instructions.js';
import { BuildContext } from '../context/build-context.js';
import { LayeredFs } from '../context/layered-fs.js';
import { HashCache } from '../context/hash-cache.js';
import { hashSelection } from '../context/content-hash.js';
import { resolvePath, type FsView } from '../context/fs-view.js';
import { planCopy, type CopyParams } from '../steps/copy.js';
import { resolveChown } from '../steps/copy-chown.js';
import { writeLayer } from '../layer/index.js';
import type { LayerEntry, LayerWriteOptions } from '../layer/types.js';
import type { FsStep, PreparedStep, StageResult, StepExecutors } from '../solver/solver.js';
import type { StepOutcome } from '../solver/ports.js';
import type { BuildEvent } from '../events/index.js';
import { DEFAULT_SHELL, commandLine } from '../steps/meta.js';
import type { BuildOptions } from './options.js';
import type { RunMountSpec } from '../sandbox/run-mounts.js';
import { LOGS_DIR } from '../store/usage.js';
import { NETWORK_HOST_ENTITLEMENT } from '../sandbox/network-mode.js';

type FromSource = StageResult | { image: LayerRef[]; key: Digest };

export interface BuildExecutors extends StepExecutors {
  /** Releases the read-only mounts and temporary files the build made; saves the context hash cache. */
  close(): Promise<void>;
  /** Snapshot dirs of `layers`, topmost first (for the local/tar outputs too). */
  lowerdirs(layers: readonly LayerRef[]): Promise<string[]>;
}

interface ExecutorInit {
  store: Store;
  contextDir: string;
  dockerfilePath: string | undefined;
  options: BuildOptions;
  sourceDateEpoch: number | undefined;
  emit: (e: BuildEvent) => void;
  /** Makes sure the blobs of `layers` are in the store (an imported cache may still hold them remotely). */
  ensureLayers: (layers: readonly LayerRef[]) => Promise<void>;
}

/**
 * Turns expanded RUN/COPY/ADD/WORKDIR steps into calls on the context,
 * the COPY planner, the layer writer and the sandbox. Everything Dockerfile-
 * specific stops here: the steps below receive plain data.
 */
export async function createExecutors(init: ExecutorInit): Promise<BuildExecutors> {
  const { store, options } = init;
  // one stat cache per context directory: a build loads only the entries of the tree it reads
  const hashCacheFile = path.join(store.layout.cache, 'context-hashes', `${createHash('sha256').update(path.resolve(init.contextDir)).digest('hex').slice(0, 16)}.json`);
  let context: BuildContext | undefined;
  let hashCache: HashCache | undefined;
  const ctx = (): BuildContext => {
    context ??= BuildContext.open(init.contextDir, init.dockerfilePath ? { dockerfile: init.dockerfilePath } : {});
    return context;
  };
  const hashes = (): HashCache => {
    hashCache ??= HashCache.load(hashCacheFile);
    return hashCache;
  };
  const layerOpts: LayerWriteOptions = {
    ...(options.compression ? { compression: options.compression } : {}),
    ...(options.compressionLevel !== undefined ? { compressionLevel: options.compressionLevel } : {}),
    ...(init.sourceDateEpoch !== undefined ? { sourceDateEpoch: init.sourceDateEpoch } : {}),
  };
  // named like a RUN's scratch dir (owner pid and start time), so that after a SIGKILL the next
  // command's sweep unmounts the read-only `--mount from=` views kept here and removes the dir
  const { makeScratch } = await import('../sandbox/scratch.js');
  const scratch = (await makeScratch(store.root)).dir;
  // Step logs are named per build and step (never appended across builds); the time first so `ls` lists them in order.
  const buildId = `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
  const roMounts: string[] = [];
  // binfmt_misc is read once per platform per build
  const executable = new Map<string, Promise<unknown>>();
  const canExecute = async (platform: Platform): Promise<void> => {
    const key = formatPlatform(platform);
    let p = executable.get(key);
    if (!p) {
      const { executionFor } = await import('../sandbox/emulation.js');
      p = executionFor(platform);
      executable.set(key, p);
    }
    await p;
  };

  async function lowerdirs(layers: readonly LayerRef[]): Promise<string[]> {
    await init.ensureLayers(layers);
    const dirs = await Promise.all(layers.map((l) => store.snapshotPath(l)));
    return dirs.reverse();
  }

  async function fsOf(layers: readonly LayerRef[], label: string): Promise<LayeredFs> {
    return new LayeredFs(await lowerdirs(layers), label);
  }

  /** One host directory showing a stage's merged file system, for RUN --mount=type=bind,from=. */
  async function rootfsDir(layers: readonly LayerRef[]): Promise<string> {
    const dirs = await lowerdirs(layers);
    if (dirs.length === 0) {
      const empty = path.join(scratch, `empty-${roMounts.length}`);
      await mkdir(empty, { recursive: true });
      return empty;
    }
    if (dirs.length === 1) return dirs[0]!;
    const { mountReadonlyLayers } = await import('../sandbox/mount.js');
    const target = path.join(scratch, `ro-${roMounts.length}`);
    await mkdir(target, { recursive: true });
    mountReadonlyLayers(dirs, target);
    roMounts.push(target);
    return target;
  }

  function layersOf(src: FromSource): LayerRef[] {
    return 'draft' in src ? src.draft.layers : src.image;
  }

  async function prepare(step: FsStep, resolveFrom: (ref: string) => Promise<FromSource>): Promise<PreparedStep> {
    const instr = step.instruction;
    const config = step.state.meta.config;
    const workdir = config.WorkingDir && config.WorkingDir !== '' ? config.WorkingDir : '/';
    switch (instr.kind) {
      case 'COPY':
      case 'ADD': {
        const heredocFiles = await heredocTree(instr.heredocs, scratch);
        const fromHeredocs = heredocFiles !== undefined && instr.sources.every((s) => s.startsWith('<<'));
        const params = (from: FsView, destFs: FsView | undefined): CopyParams => ({
          kind: instr.kind,
          sources: fromHeredocs ? heredocFiles.names : instr.sources,
          dest: instr.dest,
          workdir,
          from,
          ...(instr.chown !== undefined ? { chown: instr.chown } : {}),
          ...(instr.chmod !== undefined ? { chmod: instr.chmod } : {}),
          exclude: instr.exclude,
          parents: instr.parents,
          link: instr.link,
          ...(destFs ? { destFs } : {}),
          ...(instr.kind === 'ADD' && instr.checksum !== undefined ? { checksum: instr.checksum } : {}),
          ...(instr.kind === 'ADD' && instr.keepGitDir !== undefined ? { keepGitDir: instr.keepGitDir } : {}),
          ...(instr.kind === 'ADD' && instr.unpack !== undefined ? { unpack: instr.unpack } : {}),
          // snapshot files never change, so their hashes are as cacheable as the context's
          hashCache: hashes(),
          tmpDir: scratch,
          now: init.sourceDateEpoch ?? Math.floor(Date.now() / 1000),
        });
        // the destination's own files (owners for --chown, existing parents) are read only when the step runs
        // with --link planCopy reads the destination only to resolve --chown names, never for metadata
        const destFs = async (): Promise<FsView | undefined> => (step.state.draft.layers.length === 0 ? undefined : fsOf(step.state.draft.layers, 'image'));
        const write = async (p: CopyParams): Promise<StepOutcome> => {
          const planned = await planCopy(p);
          try {
            return { layer: await writeLayer(planned.entries, store, layerOpts) };
          } finally {
            planned.dispose();
          }
        };
        if (instr.from !== undefined && !fromHeredocs) {
          // a stage's or image's key names its content: nothing is read (or downloaded) on a cache hit
          const src = await resolveFrom(instr.from);
          return {
            inputs: [`from:${src.key}`],
            execute: async () => write(params(await fsOf(layersOf(src), `stage ${instr.from}`), await destFs())),
          };
        }
        const view: FsView = fromHeredocs ? heredocFiles.view : ctx();
        const remote = instr.kind === 'ADD' && instr.sources.some((s) => /^(https?:\/\/|git@|git:\/\/|ssh:\/\/)/.test(s));
        if (remote) {
          // downloads happen once: the planned entries are kept for execute
          const planned = await planCopy(params(view, await destFs()));
          return {
            inputs: [planned.inputDigest],
            execute: async () => {
              try {
                return { layer: await writeLayer(planned.entries, store, layerOpts) };
              } finally {
                planned.dispose();
              }
            },
          };
        }
        // the key needs only the selected sources; owners are resolved against the image when the step runs
        const { chown: _chown, ...probeParams } = params(view, undefined);
        const hashStart = performance.now();
        const probe = await planCopy(probeParams);
        const hashMs = performance.now() - hashStart;
        probe.dispose();
        return { inputs: [probe.inputDigest], ...(probe.inputFiles ? { files: probe.inputFiles } : {}), hashMs, execute: async () => write(params(view, await destFs())) };
      }
      case 'WORKDIR': {
        return {
          inputs: [],
          execute: async () => {
            const fs = step.state.draft.layers.length ? await fsOf(step.state.draft.layers, 'image') : undefined;
            const entries = await workdirEntries(workdir, fs, config.User, init.sourceDateEpoch);
            return entries.length ? { layer: await writeLayer(entries, store, layerOpts) } : {};
          },
        };
      }
      case 'RUN': {
        const { executeRun, heredocRun, runFailure } = await import('../steps/run.js');
        const shell = config.Shell ?? DEFAULT_SHELL;
        const inputs: string[] = [];
        // mount sources are materialised only when the RUN runs: a cache hit never unpacks or downloads them
        const mounts: Array<() => Promise<RunMountSpec>> = [];
        let args: string[];
        if (instr.cmd.form === 'exec') {
          args = commandLine(instr.cmd, config.Shell);
        } else if (instr.heredocs.length === 1 && /^<<-?\s*["']?[A-Za-z0-9_.-]+["']?\s*$/.test(instr.cmd.text.trim())) {
          const h = instr.heredocs[0]!;
          const hr = heredocRun(shell, h.name, h.body);
          args = hr.args;
          mounts.push(async () => hr.mount);
        } else if (instr.heredocs.length) {
          // the shell reads the heredocs itself, as BuildKit does when the command has more than the heredoc
          args = [...shell, [instr.cmd.text, ...instr.heredocs.map((h) => `${h.body}${h.name}`)].join('\n')];
        } else {
          args = commandLine(instr.cmd, config.Shell);
        }
        const hashed = { ms: 0, any: false };
        for (const m of instr.mounts) mounts.push(await mountSpec(m, resolveFrom, inputs, hashed));
        const network = instr.network === undefined || instr.network === 'default' ? (options.network ?? 'default') : instr.network;
        if (instr.network === 'host' && options.network !== 'host' && !(options.allow ?? []).includes(NETWORK_HOST_ENTITLEMENT)) {
          throw new KilnError('USAGE', `RUN --network=host needs --allow ${NETWORK_HOST_ENTITLEMENT} (${NETWORK_HOST_ENTITLEMENT} is not allowed)`);
        }
        const insecure = instr.security === 'insecure';
        if (insecure && !(options.allow ?? []).includes('security.insecure')) {
          throw new KilnError('USAGE', 'RUN --security=insecure needs --allow security.insecure');
        }
        const logDir = path.join(store.layout.root, LOGS_DIR);
        const logFile = path.join(logDir, `${buildId}-stage${step.step.stage}-line${step.step.line}.log`);
        return {
          inputs,
          ...(hashed.any ? { hashMs: hashed.ms } : {}),
          execute: async () => {
            // a foreign platform runs only through a usable binfmt_misc handler; without one the error says what to install
            await canExecute(step.state.platform);
            await mkdir(logDir, { recursive: true });
            const r = await executeRun({
              store,
              lowerdirs: await lowerdirs(step.state.draft.layers),
              args,
              env: step.runEnv,
              ...(config.User ? { user: config.User } : {}),
              workdir,
              network,
              mounts: await Promise.all(mounts.map((f) => f())),
              ...(options.limits ? { limits: options.limits } : {}),
              securityInsecure: insecure,
              layer: layerOpts,
              ...(options.runtime ? { runtime: { runtime: options.runtime } } : {}),
              signal: step.signal,
              onOutput: (stream, line) => init.emit({ type: 'step-log', step: step.step, stream, line, time: Date.now() }),
              logFile,
            }).catch((e: unknown) => {
              const failed = runFailure(e);
              if (!failed) throw e;
              // the one-line error quotes the last lines; it names the file that has all of them
              const { exitCode, outputTail, oomKilled } = failed;
              throw new RunFailedError(failed.message, { exitCode, outputTail, oomKilled, step: step.step.text, logFile }, { hint: `full output: ${logFile}`, cause: e });
            });
            return { ...(r.layer ? { layer: r.layer } : {}), usage: { cpuSeconds: r.usage.cpuSeconds, ...(r.usage.peakMemoryBytes !== undefined ? { peakMemoryBytes: r.usage.peakMemoryBytes } : {}) }, timings: r.timings };
          },
        };
      }
    }
  }

  /**
   * RUN --mount → what goes into the cache key now (pushed to `inputs`) and a
   * function that makes the sandbox's plain mount spec when the step runs.
   */
  async function mountSpec(m: RunMount, resolveFrom: (ref: string) => Promise<FromSource>, inputs: string[], hashed: { ms: number; any: boolean }): Promise<() => Promise<RunMountSpec>> {
    switch (m.type) {
      case 'bind': {
        const source = m.source ?? '';
        if (m.from !== undefined) {
          const src = await resolveFrom(m.from);
          inputs.push(`bind:${m.target}:${src.key}:${source}`);
          // resolved inside the stage when the RUN runs (run-mounts pins it by descriptor): never on the host
          return async () => ({ type: 'bind', target: m.target, source: { root: await rootfsDir(layersOf(src)), path: source, chroot: true, label: `stage ${m.from}` }, readwrite: !m.readonly });
        }
        const hashStart = performance.now();
        const c = ctx();
        // the key covers what the mount will show: a symlink is followed (inside the context) before hashing
        const rel = resolvePath(c, safeSub(source), { followFinal: true, what: source });
        inputs.push(`bind:${m.target}:${hashSelection(c, [rel === '' ? '.' : rel], hashes())}`);
        hashed.ms += performance.now() - hashStart;
        hashed.any = true;
        return async () => ({ type: 'bind', target: m.target, source: { root: c.root, path: rel, chroot: false, label: c.label }, readwrite: !m.readonly });
      }
      case 'cache': {
        const src = m.from !== undefined ? await resolveFrom(m.from) : undefined;
        return async () => ({
          type: 'cache',
          target: m.target,
          id: m.id ?? m.target,
          sharing: m.sharing,
          mode: m.mode,
          uid: m.uid,
          gid: m.gid,
          readonly: m.readonly,
          ...(src
            ? {
              seed: { root: await rootfsDir(layersOf(src)), path: m.source ?? '', chroot: true, label: `stage ${m.from}` },
              seedKey: `${src.key}:${safeSub(m.source ?? '')}`,
            }
            : {}),
        });
      }
      case 'tmpfs':
        return async () => ({ type: 'tmpfs', target: m.target, ...(m.size !== undefined ? { size: m.size } : {}) });
      case 'secret': {
        const s = (options.secrets ?? []).find((x) => x.id === m.id);
        inputs.push(`secret:${m.id}:${s ? 'present' : 'absent'}`);
        return async () => {
          let data: Uint8Array | undefined;
          if (s?.src) data = await readFile(s.src);
          else if (s?.env !== undefined && process.env[s.env] !== undefined) data = Buffer.from(process.env[s.env]!);
          return {
            type: 'secret',
            id: m.id,
            ...(m.target !== undefined ? { target: m.target } : {}),
            ...(m.env !== undefined ? { env: m.env } : {}),
            required: m.required,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            ...(data ? { data } : {}),
          };
        };
      }
      case 'ssh': {
        const s = (options.ssh ?? []).find((x) => x.id === m.id);
        const socket = s ? (s.paths[0] ?? process.env['SSH_AUTH_SOCK']) : undefined;
        return async () => ({ type: 'ssh', id: m.id, ...(m.target !== undefined ? { target: m.target } : {}), required: m.required, ...(socket ? { socket } : {}) });
      }
    }
  }

  return {
    prepare,
    lowerdirs,
    async close() {
      if (hashCache) {
        try {
          hashCache.save();
        } catch {
          // the hash cache only saves time
        }
      }
      if (roMounts.length) {
        const { unmount } = await import('../sandbox/mount.js');
        for (const t of roMounts.splice(0)) {
          try {
            unmount(t);
          } catch {
            // swept at the next start
          }
        }
      }
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

function safeSub(p: string): string {
  const clean = path.posix.normalize(`/${p}`).slice(1);
  return clean.replace(/\/$/, '');
}

/** COPY <<EOF files: each heredoc becomes a file in a small temporary tree. */
async function heredocTree(heredocs: Heredoc[], scratch: string): Promise<{ view: FsView; names: string[] } | undefined> {
  if (!heredocs.length) return undefined;
  const { writeFile } = await import('node:fs/promises');
  const dir = await mkdtemp(path.join(scratch, 'h-'));
  const names: string[] = [];
  for (const h of heredocs) {
    await writeFile(path.join(dir, h.name), h.body, { mode: 0o644 });
    names.push(h.name);
  }
  return { view: BuildContext.open(dir, { ignoreFile: null, label: 'heredoc' }), names };
}

/** WORKDIR creates a missing directory (and parents) owned by the current USER, as BuildKit does. */
async function workdirEntries(dir: string, fs: FsView | undefined, user: string | undefined, epoch: number | undefined): Promise<LayerEntry[]> {
  const rel = dir.replace(/^\/+/, '').replace(/\/+$/, '');
  if (rel === '') return [];
  const parts = rel.split('/');
  const entries: LayerEntry[] = [];
  const owner = user ? await resolveChown(user, fs).catch(() => ({ uid: 0, gid: 0 })) : { uid: 0, gid: 0 };
  const mtime = epoch ?? Math.floor(Date.now() / 1000);
  let missing = false;
  for (let i = 1; i <= parts.length; i++) {
    const p = parts.slice(0, i).join('/');
    const node = missing ? undefined : fs?.lstat(p);
    if (node && node.type !== 'directory') {
      if (node.type === 'symlink') return []; // a symlinked WORKDIR is the RUN's business
      throw new KilnError('CONTEXT', `WORKDIR ${dir}: "/${p}" exists and is not a directory`);
    }
    if (node) {
      entries.push({ path: p, type: 'directory', mode: node.mode, uid: node.uid, gid: node.gid, mtime: node.mtime });
    } else {
      missing = true;
      entries.push({ path: p, type: 'directory', mode: 0o755, uid: owner.uid, gid: owner.gid, mtime });
    }
  }
  return missing ? entries : [];
}
