import type { LayerRef } from '../image/image.js';
import type { ContainerConfig, Platform } from '../image/types.js';
import type { Instruction } from '../frontend/instructions.js';
import type { BuildContext } from '../context/build-context.js';
import type { FsView } from '../context/fs-view.js';
import type { HashCache } from '../context/hash-cache.js';
import type { LayerWriteOptions, WrittenLayer } from '../layer/types.js';
import type { OutputListener } from '../sandbox/output.js';
import type { SharedNetwork } from '../sandbox/network.js';
import type { RunStepInput } from './run.js';
import type { RunPolicy } from './run-policy.js';
import type { ResourceUsage, StepTimings } from '../events/index.js';

/** The instructions that change the file system; the others only change the config (meta.ts). */
export type FsInstruction = Extract<Instruction, { kind: 'RUN' | 'COPY' | 'ADD' | 'WORKDIR' }>;

/** One file-system step after expansion, with the state of its stage before it. */
export interface StepInput {
  instruction: FsInstruction;
  /** The stage's container config (for WORKDIR: already with the new directory). */
  config: ContainerConfig;
  /** The stage's layers so far, bottom first. */
  layers: readonly LayerRef[];
  platform: Platform;
  /** KEY=VALUE the RUN sees: ENV, ARGs in scope and the hidden proxy variables. */
  runEnv: string[];
  signal: AbortSignal;
  /**
   * A later step mounts this step's layer (a RUN further down the stage, or
   * another stage reads this one), so a COPY, ADD or WORKDIR writes its
   * snapshot along with the blob (see step-layer.ts). A RUN always keeps its
   * upperdir as the snapshot.
   */
  snapshotWanted?: boolean;
  /**
   * The step will not be found in the cache: the build does not ask (--no-cache), or nothing could
   * answer (the store never built this Dockerfile position and no cache is imported). A step that
   * can then run before its key is known, and learn the key from what it read, returns a
   * `RunFirstStep`; it is only a hint, the key decides as always.
   */
  missExpected?: boolean;
}

/** Another stage or an image a step reads from (`COPY --from`, `RUN --mount from=`): its cache key names its content. */
export interface SourceImage {
  key: string;
  layers: readonly LayerRef[];
}

/**
 * What a step may use of the build it runs in. The build wires it from the
 * store, the context and its scratch directory; the steps never open either
 * themselves, so they stay plain functions of their input.
 */
export interface StepContext {
  /** Layer blobs go here; its root holds scratch and cache-mount dirs. */
  store: RunStepInput['store'];
  /** Compression, level and SOURCE_DATE_EPOCH of the layers the build writes. */
  layer: LayerWriteOptions;
  /** What RUN may do: default network, entitlements, secrets, SSH, limits, runtime. */
  policy: RunPolicy;
  sourceDateEpoch?: number;
  /** The build's own scratch directory (heredoc files, downloads, empty mount roots). */
  scratch: string;
  /** The build context, opened on first use. */
  context(): BuildContext;
  /** Stat-keyed file hashes shared by every step of the build. */
  hashes(): HashCache;
  /** The merged file system of `layers`, read-only. */
  fsOf(layers: readonly LayerRef[], label: string): Promise<FsView>;
  /** One host directory showing the merged file system of `layers` (RUN --mount from=). */
  rootfsDir(layers: readonly LayerRef[]): Promise<string>;
  /** Snapshot dirs of `layers`, topmost first. */
  lowerdirs(layers: readonly LayerRef[]): Promise<string[]>;
  /** A stage (by name or index) or an image named in the step. */
  resolveFrom(ref: string): Promise<SourceImage>;
  /** Fails when RUN cannot execute binaries of `platform` here (no binfmt_misc handler). */
  canExecute(platform: Platform): Promise<void>;
  /** The network namespace and slirp4netns the build's `default`-mode RUNs share, made on first use, stopped when the build ends. */
  buildNetwork(): Promise<SharedNetwork>;
  /** The file this step's RUN output is logged to; its directory exists once the promise resolves. */
  logFile(): Promise<string>;
  /** A line of RUN output, as it comes. */
  onOutput: OutputListener;
  /** Told of every URL or git repository an ADD read, with its digest: provenance's materials. */
  onRemoteSource?: (source: { uri: string; digest: Record<string, string> }) => void;
}

export interface StepOutcome {
  layer?: WrittenLayer;
  usage?: ResourceUsage;
  /** What the step measured of its own work (RUN: the process and its layer write). */
  timings?: StepTimings;
}

/** What goes into a step's cache key besides its instruction and parent. */
export interface StepKeyInputs {
  inputs: string[];
  /** Per selected path, a short digest (COPY/ADD), so a cache miss can name the file that changed. */
  files?: Record<string, string>;
  /** Time spent hashing what the step reads (sources, context bind mounts), when it read any. */
  hashMs?: number;
}

/**
 * A step in two phases: `inputs` (and `files`) are what goes into its cache
 * key, computed without writing anything; `execute` runs only on a cache miss.
 */
export interface PreparedStep extends StepKeyInputs {
  execute(): Promise<StepOutcome>;
}

/**
 * A step whose miss was expected (`StepInput.missExpected`), in the other order: `execute`
 * first, then `key`, which gives what a `PreparedStep`'s inputs would have been for the same
 * sources, computed from what the execution read. Should the key be found in the cache after
 * all, the cached result is used and the written layer is left to garbage collection.
 */
export interface RunFirstStep {
  runFirst: true;
  execute(): Promise<StepOutcome>;
  key(): Promise<StepKeyInputs>;
}
