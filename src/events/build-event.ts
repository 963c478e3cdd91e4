import type { Digest } from '../image/digest.js';

/**
 * Where a blob transfer stands, in the registry client's words (`RegistryEvent`
 * has the same union; build/ passes its phases through unchanged, which the
 * compiler checks): one naming for pulls and pushes whichever API reports them.
 */
export type TransferPhase = 'waiting' | 'exists' | 'mounted' | 'downloading' | 'uploading' | 'retrying' | 'resumed' | 'done';

/** Where a step sits in the Dockerfile, for progress display and errors. */
export interface StepRef {
  /** `stageIndex/stepIndex`, stable within one build. */
  id: string;
  stage: number;
  stageName?: string;
  /** 1-based step number within the build (every instruction, FROM included), and the total. */
  index: number;
  total: number;
  /**
   * buildx's numbering within the stage (`[stage-1 2/5]`): only the steps
   * BuildKit shows as vertices count — FROM an image or named context, RUN,
   * COPY, ADD, WORKDIR (ONBUILD triggers of those kinds too). Absent on the
   * others (ENV, LABEL, ARG, …, and FROM scratch or another stage).
   */
  inStage?: { index: number; total: number };
  /** The Dockerfile has one stage: buildx then shows no stage name. */
  onlyStage?: boolean;
  /** The instruction as the user wrote it, e.g. `RUN make`. */
  text: string;
  line: number;
  /** Multi-platform builds: the platform the step runs for (a stage on $BUILDPLATFORM runs for the host)… */
  platform?: string;
  /** …and the target platform whose image the step belongs to. */
  target?: string;
}

/**
 * Where one step's time went. A step that reads files to make its cache key
 * (COPY/ADD sources, RUN context bind mounts) measures `hashMs` while it is
 * prepared, so a hit has it too; a RUN that ran adds `runMs` and, when it
 * changed files, `layerMs`. The build report gives what no part
 * covers to the step's instruction kind, so the parts always add up.
 */
export interface StepTimings {
  /** Hashing the files the step reads (COPY/ADD sources, RUN --mount=type=bind from the context), before the cache lookup. */
  hashMs?: number;
  /** The RUN process itself, from runtime start to exit (sandbox setup excluded). */
  runMs?: number;
  /** Diffing, tarring, compressing and storing the layer. */
  layerMs?: number;
}

/** A stage and the stages it waits for (FROM <stage>, COPY --from, RUN --mount from=). */
export interface StageInfo {
  index: number;
  name?: string;
  deps: number[];
}

export interface ResourceUsage {
  cpuSeconds: number;
  peakMemoryBytes?: number;
}

/**
 * Everything a build reports while it runs. The CLI renderers (tty, plain,
 * json) and the library's `onEvent` consume the same stream.
 */
export type BuildEvent =
  | {
    type: 'build-start';
    file: string;
    stages: number;
    steps: number;
    /** The stage graph, so consumers (the build report's critical path) need not guess dependencies from timing. */
    stageGraph?: StageInfo[];
    time: number;
  }
  | { type: 'step-start'; step: StepRef; time: number }
  | { type: 'step-cached'; step: StepRef; key: Digest; /** Where the record lives when it differs from the chain key (COPY --link). */ recordKey?: Digest; timings?: StepTimings; time: number }
  | { type: 'step-log'; step: StepRef; stream: 'stdout' | 'stderr'; line: string; time: number }
  | {
    type: 'step-done';
    step: StepRef;
    key: Digest;
    /** Where the record lives when it differs from the chain key (COPY --link). */
    recordKey?: Digest;
    durationMs: number;
    layer?: { digest: Digest; size: number; diffID: Digest };
    usage?: ResourceUsage;
    /** Why the cache missed, when a record for an older variant of this step was found (--explain-cache). */
    missReason?: string;
    timings?: StepTimings;
    time: number;
  }
  | { type: 'step-error'; step: StepRef; message: string; time: number }
  /** Blob transfers, with the registry client's own phases (`RegistryEvent`): one naming whether a pull or push is seen through a build or directly. */
  | { type: 'pull-progress'; ref: string; digest: Digest; mediaType?: string; done: number; total: number; phase: TransferPhase; time: number }
  | { type: 'push-progress'; ref: string; digest: Digest; mediaType?: string; done: number; total: number; phase: TransferPhase; time: number }
  /**
   * Work outside the steps. There is no context phase: the build context is read lazily, by the steps
   * that need it, so its hashing is each step's `timings.hashMs`.
   */
  | { type: 'phase'; name: 'resolve' | 'export' | 'push'; state: 'start' | 'done'; detail?: string; durationMs?: number; time: number }
  | { type: 'warning'; message: string; file?: string; line?: number; rule?: string; time: number }
  | { type: 'build-done'; imageId: Digest; manifestDigest: Digest; tags: string[]; durationMs: number; time: number };

export type BuildEventListener = (e: BuildEvent) => void;
