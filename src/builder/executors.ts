import { mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Digest } from '../image/digest.js';
import type { LayerRef } from '../image/image.js';
import type { Platform } from '../image/types.js';
import { formatPlatform } from '../image/platform.js';
import type { Store } from '../store/store.js';
import { makeStoreDirs } from '../store/store-dirs.js';
import { BuildContext } from '../context/build-context.js';
import { LayeredFs } from '../context/layered-fs.js';
import { HashCache } from '../context/hash-cache.js';
import { hashSelection } from '../context/content-hash.js';
import type { LayerWriteOptions } from '../layer/types.js';
import type { FsStep, StageResult, StepExecutors } from '../solver/solver.js';
import type { BuildEvent } from '../events/index.js';
import { prepareStep, type StepContext } from '../steps/prepare.js';
import type { RunPolicy } from '../steps/run-policy.js';
import type { SharedNetwork } from '../sandbox/network.js';

type FromSource = StageResult | { image: LayerRef[]; key: Digest };

export interface BuildExecutors extends StepExecutors {
  /** Releases the read-only mounts and temporary files the build made; saves the context hash cache. */
  close(): Promise<void>;
  /** Snapshot dirs of `layers`, topmost first (for the local/tar outputs too). */
  lowerdirs(layers: readonly LayerRef[]): Promise<string[]>;
  /** One digest of the whole context as COPY sees it (after .dockerignore): provenance's context material. */
  contextDigest(): Digest;
}

interface ExecutorInit {
  store: Store;
  /** The build's signal: unpacking a layer into its snapshot stops with it. */
  signal?: AbortSignal;
  contextDir: string;
  dockerfilePath: string | undefined;
  /** The context came from elsewhere: its ignore files are resolved inside it. */
  contained?: boolean;
  /** What RUN steps may do. */
  policy: RunPolicy;
  /** How the build writes its layers (the build's signal among them). */
  layer: LayerWriteOptions;
  sourceDateEpoch: number | undefined;
  emit: (e: BuildEvent) => void;
  /** Makes sure the blobs of `layers` are in the store (an imported cache may still hold them remotely). */
  ensureLayers: (layers: readonly LayerRef[]) => Promise<void>;
  /** Told of each URL or git source an ADD read, with its digest. */
  onRemoteSource?: (source: { uri: string; digest: Record<string, string> }) => void;
}

/**
 * The plumbing under the steps: the store's snapshots, the build context
 * and its hash cache, the build's scratch directory and read-only mounts,
 * step logs. What each instruction means is in steps/ (`prepareStep`).
 */
export async function createExecutors(init: ExecutorInit): Promise<BuildExecutors> {
  const { store } = init;
  const hashCacheFile = HashCache.fileFor(store.layout.contextHashes, init.contextDir);
  let context: BuildContext | undefined;
  let hashCache: HashCache | undefined;
  const ctx = (): BuildContext => {
    context ??= BuildContext.open(init.contextDir, { ...(init.dockerfilePath ? { dockerfile: init.dockerfilePath } : {}), ...(init.contained ? { contained: true } : {}) });
    return context;
  };
  const hashes = (): HashCache => {
    hashCache ??= HashCache.load(hashCacheFile);
    return hashCache;
  };
  // named like a RUN's scratch dir (owner pid and start time), so that after a SIGKILL the next
  // command's sweep unmounts the read-only `--mount from=` views kept here and removes the dir
  const { makeScratch } = await import('../sandbox/scratch.js');
  const scratch = (await makeScratch(store.root)).dir;
  // Step logs are named per build and step (never appended across builds); the time first so `ls` lists them in order.
  const buildId = `${new Date().toISOString().replace(/[-:]/g, '').slice(0, 15)}-${randomBytes(3).toString('hex')}`;
  const logDir = store.layout.logs;
  const roMounts: string[] = [];
  // the default-mode RUNs of this build share one network namespace and slirp4netns, made at the first RUN
  let sharedNetwork: SharedNetwork | undefined;
  const buildNetwork = async (): Promise<SharedNetwork> => {
    if (!sharedNetwork) {
      const { SharedNetwork } = await import('../sandbox/network.js');
      sharedNetwork ??= new SharedNetwork(path.join(scratch, 'netns'));
    }
    return sharedNetwork;
  };
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

  // A layer's snapshot, once found or made in this build, is not looked up again: nothing removes a
  // snapshot while the build holds the store lock, and each RUN mounts every layer below it, so
  // checking the blob, reading the marker and recording the diffID per step would cost O(steps²) reads.
  const snapshotDirs = new Map<string, Promise<string>>();
  async function lowerdirs(layers: readonly LayerRef[]): Promise<string[]> {
    const id = (l: LayerRef): string => `${l.diffID} ${l.descriptor.digest}`;
    const missing = layers.filter((l) => !snapshotDirs.has(id(l)));
    if (missing.length > 0) {
      await init.ensureLayers(missing);
      for (const l of missing) {
        if (snapshotDirs.has(id(l))) continue;
        const p = store.snapshotPath(l, init.signal);
        snapshotDirs.set(id(l), p);
        // a failed lookup is tried again by the next step that needs it
        p.catch(() => {
          if (snapshotDirs.get(id(l)) === p) snapshotDirs.delete(id(l));
        });
      }
    }
    const dirs = await Promise.all(layers.map((l) => snapshotDirs.get(id(l))!));
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

  const shared = {
    store, layer: init.layer, policy: init.policy, ...(init.sourceDateEpoch !== undefined ? { sourceDateEpoch: init.sourceDateEpoch } : {}),
    scratch, context: ctx, hashes, fsOf, rootfsDir, lowerdirs, canExecute, buildNetwork, ...(init.onRemoteSource ? { onRemoteSource: init.onRemoteSource } : {}),
  };

  return {
    async prepare(step: FsStep, resolveFrom: (ref: string) => Promise<FromSource>) {
      const stepCtx: StepContext = {
        ...shared,
        async resolveFrom(ref) {
          const src = await resolveFrom(ref);
          return { key: src.key, layers: 'draft' in src ? src.draft.layers : src.image };
        },
        async logFile() {
          makeStoreDirs(store.layout, logDir);
          return path.join(logDir, `${buildId}-stage${step.step.stage}-line${step.step.line}.log`);
        },
        onOutput: (stream, line) => init.emit({ type: 'step-log', step: step.step, stream, line, time: Date.now() }),
      };
      return prepareStep(
        { instruction: step.instruction, config: step.state.meta.config, layers: step.state.draft.layers, platform: step.state.platform, runEnv: step.runEnv, signal: step.signal, snapshotWanted: step.snapshotWanted, missExpected: step.missExpected },
        stepCtx,
      );
    },
    lowerdirs,
    contextDigest: () => hashSelection(ctx(), ['.'], hashes()),
    async close() {
      // before the scratch dir goes: the namespace is bound to a file in it
      await sharedNetwork?.close();
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
