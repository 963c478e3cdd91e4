import pLimit, { type LimitFunction } from 'p-limit';
import type { Digest } from '../image/digest.js';
import type { LayerRef } from '../image/image.js';
import type { ContainerConfig, HistoryEntry, ImageConfig, Platform } from '../image/types.js';
import { knownConfigFields, scratchConfig, withDefaultPath, type ImageDraft } from '../image/config.js';
import { formatPlatform, parsePlatform } from '../image/platform.js';
import { type Instruction, isLinkedCopy, type ParsedDockerfile } from '../frontend/instructions.js';
import type { BuildPlan, PlanStage } from '../plan/types.js';
import { KilnError, isKilnError, needsRootError } from '../errors/index.js';
import { rootlessFailure } from '../rootless/index.js';
import { applyMeta, isMetaInstruction, type MetaState } from '../steps/meta.js';
import type { BuildEvent, StepRef, StepTimings } from '../events/index.js';
import type { ImageSource } from './ports.js';
import type { PreparedStep, RunFirstStep } from '../steps/step-context.js';
import type { CacheIndex, CacheRecord } from '../cache/records.js';
import { stepCacheKey as cacheKey, type KeyParts } from '../cache/keys.js';
import { createdBy } from './history.js';
import { StageVars } from '../plan/stage-vars.js';
import type { DeclaredArg } from '../frontend/var-scope.js';
import { isoSeconds } from '../image/timestamp.js';
import { isSbomScanArg } from '../plan/sbom-scan-args.js';

/** What a finished stage hands to its dependants and to the exporter. */
export interface StageResult {
  index: number;
  name?: string | undefined;
  draft: ImageDraft;
  /** Cache key of the last step: the identity of the stage's file system and config. */
  key: Digest;
  platform: Platform;
  /** How many of `draft.layers`, from the bottom, are the base image's (the rest were built). */
  baseLayers: number;
  /** ARGs in scope at the end of the stage: a stage built FROM this one inherits them (BuildKit does). */
  args: DeclaredArg[];
}

/** The state of a stage while its steps run. */
export interface StageState {
  stage: PlanStage;
  draft: ImageDraft;
  meta: MetaState;
  key: Digest;
  platform: Platform;
  /** Layers of the base image at the bottom of `draft.layers` (0 for scratch; inherited from a parent stage). */
  baseLayers: number;
}

/** A step that changes the file system, handed to the executors with everything already expanded. */
export interface FsStep {
  instruction: Extract<Instruction, { kind: 'RUN' | 'COPY' | 'ADD' | 'WORKDIR' }>;
  state: StageState;
  /** Variables the step sees: env for RUN (ENV + ARGs in scope + hidden proxies). */
  runEnv: string[];
  step: StepRef;
  signal: AbortSignal;
  /** A later RUN of the stage, or another stage of the plan, mounts the layer this step writes. */
  snapshotWanted: boolean;
  /** The cache will not hold this step (see StepInput.missExpected): the executor may run it before its key. */
  missExpected: boolean;
}

/**
 * Two-phase execution for file-system steps: `prepare` computes the content
 * digests that go into the cache key (COPY hashes exactly the files it reads);
 * `execute` runs only on a cache miss.
 */
export interface StepExecutors {
  prepare(step: FsStep, stageResult: (ref: string) => Promise<StageResult | { image: LayerRef[]; key: Digest }>): Promise<PreparedStep | RunFirstStep>;
}

export type { PreparedStep, RunFirstStep } from '../steps/step-context.js';

export interface SolveOptions {
  parsed: ParsedDockerfile;
  plan: BuildPlan;
  images: ImageSource;
  cache: CacheIndex;
  executors: StepExecutors;
  jobs: number;
  noCache: boolean;
  /** Stage names (lower-case) or indexes as strings whose steps bypass the cache. */
  noCacheFilter: Set<string>;
  sourceDateEpoch?: number;
  explainCache: boolean;
  /**
   * Names the project (context directory and Dockerfile) so --explain-cache
   * compares a step only with the same step of an earlier build of the same project.
   */
  explainScope?: string;
  emit: (e: BuildEvent) => void;
  signal: AbortSignal;
  /** Parses an ONBUILD trigger text into an instruction. */
  parseTrigger: (text: string) => Instruction;
  /**
   * Multi-platform builds: one solve per target platform, sharing a limiter
   * (so `jobs` bounds the whole build) and the steps in flight (so a stage on
   * $BUILDPLATFORM that does not depend on the target runs once, whichever solve
   * reaches it first). Step refs then carry the target platform.
   */
  multiPlatform?: { limit: LimitFunction; inflight: Map<string, Promise<CacheRecord>> };
  /** Told of each stage as it finishes (the SBOM of a build stage needs its result). */
  onStage?: (result: StageResult) => void;
}

/**
 * Runs the plan: every stage once, independent stages in parallel under
 * `jobs`, each step through the cache. The first failure aborts the rest.
 */
export async function solve(opts: SolveOptions): Promise<StageResult> {
  const { plan } = opts;
  const controller = new AbortController();
  const onAbort = () => controller.abort(opts.signal.reason);
  opts.signal.addEventListener('abort', onAbort, { once: true });
  const signal = controller.signal;
  const limit = opts.multiPlatform?.limit ?? pLimit(Math.max(1, opts.jobs));
  const target = opts.multiPlatform ? formatPlatform(plan.targetPlatform) : undefined;
  const results = new Map<number, Promise<StageResult>>();
  const total = plan.stages.reduce((n, s) => n + s.instructions.length + 1, 0);
  let counter = 0;
  const nextIndex = () => ++counter;
  // buildx leaves the stage name out when the Dockerfile has one stage and no COPY --from image (which makes another)
  const onlyStage = opts.parsed.instructions.filter((i) => i.kind === 'FROM').length === 1 && !opts.parsed.instructions.some((i) => i.kind === 'COPY' && i.from !== undefined);

  // Which layers a later step mounts, so COPY/ADD/WORKDIR write their snapshot with the blob:
  // every layer of a stage another stage reads (FROM, COPY --from, RUN --mount from=), and those below a stage's last RUN.
  const readByOthers = new Set(plan.stages.flatMap((s) => s.deps));
  const lastRun = new Map(plan.stages.map((s) => [s.index, s.instructions.reduce((last, i, at) => (i.kind === 'RUN' ? at : last), -1)]));
  const snapshotWanted = (stage: PlanStage, raw: Instruction): boolean => {
    if (readByOthers.has(stage.index)) return true;
    const last = lastRun.get(stage.index) ?? -1;
    const at = stage.instructions.indexOf(raw);
    // an ONBUILD trigger runs before every instruction of the stage
    return at < 0 ? last >= 0 : at < last;
  };

  const stageResult = (index: number): Promise<StageResult> => {
    const r = results.get(index);
    if (r) return r;
    // a stage the target does not need, named by an ONBUILD trigger: built now, once
    const stage = plan.allStages.find((s) => s.index === index);
    if (!stage) throw new KilnError('INTERNAL', `stage ${index} is not part of the plan`);
    return start(stage);
  };

  // Dependencies are awaited outside the limiter so a waiting stage never holds a slot.
  function start(stage: PlanStage): Promise<StageResult> {
    const p = (async () => {
      await Promise.all(stage.deps.map((d) => stageResult(d)));
      const r = await limit(() => runStage(stage));
      opts.onStage?.(r);
      return r;
    })();
    p.catch((e) => controller.abort(e));
    results.set(stage.index, p);
    return p;
  }
  // rejections reach the build through the target's result and the abort above
  for (const stage of plan.stages) void start(stage);

  async function runStage(stage: PlanStage): Promise<StageResult> {
    if (signal.aborted) throw cancelled(signal);
    const platform = await stagePlatform(stage);
    const fromStep = stepRef(stage, stage.from, nextIndex(), total, platform, target, onlyStage);
    const t0 = Date.now();
    // the FROM line is shown once the base is resolved, so it names what was resolved (buildx's stage header)
    const resolved: { name?: string } = {};
    let state: StageState;
    try {
      state = await baseState(stage, platform, resolved);
    } catch (e) {
      opts.emit({ type: 'step-start', step: fromStep, time: t0 });
      opts.emit({ type: 'step-error', step: fromStep, message: e instanceof Error ? e.message : String(e), time: Date.now() });
      throw e;
    }

    const inherited = stage.base.kind === 'stage' ? (await stageResult(stage.base.index)).args : [];
    const base = state.draft.config.config;
    const scope = StageVars.forStage(plan, stage, base?.Env ?? [], opts.parsed.directives.escape, inherited, base?.Labels ?? {});
    const triggers = (state.draft.config.config?.OnBuild ?? []).map((t) => opts.parseTrigger(t));
    // buildx numbers a stage's steps within it: FROM an image, then the steps that make a vertex
    const stageTotal = (stage.base.kind === 'image' ? 1 : 0) + [...triggers, ...stage.instructions].filter(isVertexStep).length;
    let numbered = 0;
    const inStage = (): StepRef['inStage'] => (stageTotal > 0 ? { index: ++numbered, total: stageTotal } : undefined);
    const fromNumber = stage.base.kind === 'image' ? inStage() : undefined;
    const shownFrom: StepRef = { ...fromStep, ...(resolved.name ? { text: `FROM ${resolved.name}` } : {}), ...(fromNumber ? { inStage: fromNumber } : {}) };
    opts.emit({ type: 'step-start', step: shownFrom, time: t0 });
    opts.emit({ type: 'step-done', step: shownFrom, key: state.key, durationMs: Date.now() - t0, time: Date.now() });
    if (triggers.length) {
      // triggers run once, in the child; they are not inherited further
      const { OnBuild: _run, ...rest } = state.meta.config;
      state = { ...state, meta: { ...state.meta, config: rest } };
      state.draft = { ...state.draft, config: { ...state.draft.config, config: state.meta.config } };
    }
    let lastYield = Date.now();
    for (const instr of [...triggers, ...stage.instructions]) {
      // metadata steps never wait on I/O, so without a turn of the event loop a long run of them
      // would keep SIGINT/SIGTERM handlers (and other stages) from running until the stage ends
      if (Date.now() - lastYield >= YIELD_EVERY_MS) {
        await yieldToEventLoop();
        lastYield = Date.now();
      }
      if (signal.aborted) throw cancelled(signal);
      state = await runStep(stage, state, scope, instr, isVertexStep(instr) ? inStage() : undefined);
    }
    return { index: stage.index, name: stage.name, draft: state.draft, key: state.key, platform, baseLayers: state.baseLayers, args: scope.declared() };
  }

  /** `FROM --platform=…`, else the platform of the stage it builds on (as BuildKit), else the target. */
  async function stagePlatform(stage: PlanStage): Promise<Platform> {
    if (stage.platform) {
      try {
        return parsePlatform(stage.platform);
      } catch (e) {
        throw new KilnError('DOCKERFILE_PLAN', `FROM --platform=${stage.from.platform ?? ''}: ${e instanceof Error ? e.message : String(e)}`, { location: { file: opts.parsed.file, line: stage.from.range.start.line } });
      }
    }
    if (stage.base.kind === 'stage') return (await stageResult(stage.base.index)).platform;
    return plan.targetPlatform;
  }

  async function baseState(stage: PlanStage, platform: Platform, resolved: { name?: string }): Promise<StageState> {
    const base = stage.base;
    if (base.kind === 'scratch') {
      const config = scratchConfig(platform);
      return { stage, platform, draft: { config, layers: [] }, meta: metaOf(config), key: cacheKey({ parent: 'scratch', op: { platform }, env: {}, inputs: [] }), baseLayers: 0 };
    }
    if (base.kind === 'stage') {
      const r = await stageResult(base.index);
      return { stage, platform, draft: ownedDraft(r.draft), meta: metaOf(r.draft.config), key: r.key, baseLayers: r.baseLayers };
    }
    const img = await opts.images.resolve(base.ref, platform, signal);
    if (img.resolvedName !== undefined) resolved.name = img.resolvedName;
    // the base's config as BuildKit reads it (a typed round trip): keys it does not know do not reach the image
    const config = withDefaultPath(knownConfigFields(structuredClone(img.config)));
    config.history ??= [];
    // the platform is an input below every FROM: a base without a platform used for two targets runs its RUNs differently
    const key = cacheKey({ parent: img.manifestDigest, op: { platform: formatPlatform(platform) }, env: {}, inputs: [] });
    return { stage, platform, draft: { config, layers: [...img.layers] }, meta: metaOf(config), key, baseLayers: img.layers.length };
  }

  async function runStep(stage: PlanStage, state: StageState, scope: StageVars, raw: Instruction, inStage: StepRef['inStage']): Promise<StageState> {
    const step = { ...stepRef(stage, raw, nextIndex(), total, state.platform, target, onlyStage), ...(inStage ? { inStage } : {}) };
    const t0 = Date.now();
    opts.emit({ type: 'step-start', step, time: t0 });
    try {
      const { instruction: instr, vars } = scope.next(raw);
      if (instr.kind === 'ARG') {
        // an empty-layer history entry, untimed like the other metadata steps; the key does not change
        if (scope.argHistory !== undefined) (state.draft.config.history ??= []).push(historyEntry(scope.argHistory, true, false));
        opts.emit({ type: 'step-done', step, key: state.key, durationMs: Date.now() - t0, time: Date.now() });
        return state;
      }
      const keyEnv: Record<string, string> = {};
      for (const a of vars.args) if (!a.hidden) keyEnv[a.name] = a.value;

      if (isMetaInstruction(instr) && instr.kind !== 'WORKDIR') {
        const meta = applyMeta(state.meta, instr, opts.parsed.file);
        // The key does not move, as in BuildKit, where these change only the image config: a RUN keys
        // on the ENV, USER and SHELL it runs with (runOp), and COPY, ADD and WORKDIR on nothing of
        // them, so a LABEL or ENV changed near the top keeps every later step that does not use it cached
        const key = state.key;
        // untimed, as BuildKit's frontend leaves it: the image takes its time from the layers around it
        // (see fillHistoryTimes), so an unchanged rebuild makes the same image
        const text = createdBy(instr, vars.historyArgs, meta.config);
        const next = withMeta(state, meta, text === undefined ? undefined : historyEntry(text, true, false), key);
        opts.emit({ type: 'step-done', step, key, durationMs: Date.now() - t0, time: Date.now() });
        return next;
      }
      if (instr.kind === 'WORKDIR') {
        // the config changes first so the executor sees the new directory
        const meta = applyMeta(state.meta, instr, opts.parsed.file);
        state.draft.config.config = meta.config;
        state = { ...state, meta };
      }
      if (instr.kind !== 'RUN' && instr.kind !== 'COPY' && instr.kind !== 'ADD' && instr.kind !== 'WORKDIR') {
        throw new KilnError('INTERNAL', `no executor for ${instr.kind}`);
      }

      const runEnv = [...(state.meta.config.Env ?? [])];
      for (const a of vars.args) {
        if (isSbomScanArg(a.name)) continue;
        const at = runEnv.findIndex((e) => e.startsWith(`${a.name}=`));
        // an ARG declared after an ENV of its name is what the RUN sees (BuildKit's state env), the image keeps the ENV
        if (at < 0) runEnv.push(`${a.name}=${a.value}`);
        else if (a.overridesEnv) runEnv[at] = `${a.name}=${a.value}`;
      }
      for (const [k, v] of Object.entries(vars.hiddenEnv)) if (!runEnv.some((e) => e.startsWith(`${k}=`))) runEnv.push(`${k}=${v}`);

      const at = stage.instructions.indexOf(raw);
      const slot = `${opts.explainScope ?? opts.parsed.file}#${stage.name ?? stage.index}#${at >= 0 ? at : `onbuild ${raw.original}`}`;
      const bypass = opts.noCache || opts.noCacheFilter.has(String(stage.index)) || (stage.name !== undefined && opts.noCacheFilter.has(stage.name));
      // a multi-platform solve shares steps in flight by key, so there every key comes first; only COPY and ADD
      // have a run-first order, so no other step pays the look for an earlier build
      const runFirstKind = instr.kind === 'COPY' || instr.kind === 'ADD';
      const missExpected = !opts.multiPlatform && runFirstKind && (bypass || !(await opts.cache.builtBefore(slot)));
      const fsStep: FsStep = { instruction: instr, state, runEnv, step, signal, snapshotWanted: snapshotWanted(stage, raw), missExpected };
      const prepared = await keyedStep(await opts.executors.prepare(fsStep, (ref) => resolveFrom(ref, state.platform, stage)));
      const hashed: { timings?: StepTimings } = prepared.hashMs !== undefined ? { timings: { hashMs: prepared.hashMs } } : {};
      // text and files are not part of the key: the slot keeps them so a miss can name what changed
      const parts: KeyParts = {
        parent: state.key,
        op: stepOp(instr, state.meta.config),
        // only a RUN sees the build args (as environment); a file operation takes them only through its expanded text
        env: instr.kind === 'RUN' ? keyEnv : {},
        inputs: prepared.inputs,
        text: instr.original,
        ...(prepared.files ? { files: prepared.files } : {}),
      };
      const key = cacheKey(parts);
      // a --link layer does not depend on what is below it, so its record is found whatever the parent
      const linked = (instr.kind === 'COPY' || instr.kind === 'ADD') && isLinkedCopy(instr);
      const recordKey = linked ? cacheKey({ ...parts, parent: 'link' }) : key;
      // an imported record is proven here (its layer fetched and hashed against its diffID); one that fails is a miss, never an error
      const hit = bypass ? undefined : await opts.cache.get(recordKey, { step: instr.original });
      if (hit) {
        opts.emit({ type: 'step-cached', step, key, ...(linked ? { recordKey } : {}), ...hashed, time: Date.now() });
        return applyRecord(state, hit, key);
      }
      const executeStep = async (): Promise<CacheRecord> => {
        const missReason = opts.explainCache && !bypass ? await opts.cache.explain(slot, parts) : undefined;
        const outcome = await prepared.execute();
        const history = historyEntry(createdBy(instr, vars.historyArgs, state.meta.config) ?? instr.original, outcome.layer === undefined);
        const record: CacheRecord = {
          version: 1,
          key: recordKey,
          history,
          ...(outcome.layer
            ? { layer: { mediaType: outcome.layer.mediaType, digest: outcome.layer.digest, size: outcome.layer.size, diffID: outcome.layer.diffID } }
            : {}),
        };
        await opts.cache.put(record, slot, parts);
        opts.emit({
          type: 'step-done',
          step,
          key,
          ...(linked ? { recordKey } : {}),
          durationMs: Date.now() - t0,
          ...(outcome.layer ? { layer: { digest: outcome.layer.digest, size: outcome.layer.size, diffID: outcome.layer.diffID } } : {}),
          ...(outcome.usage ? { usage: outcome.usage } : {}),
          ...(missReason ? { missReason } : {}),
          ...(hashed.timings || outcome.timings ? { timings: { ...hashed.timings, ...outcome.timings } } : {}),
          time: Date.now(),
        });
        return record;
      };
      // no await between this lookup and the registration below: two solves never both run one step
      const inflight = opts.multiPlatform?.inflight;
      const running = inflight?.get(recordKey);
      if (running) {
        const rec = await running;
        opts.emit({ type: 'step-cached', step, key, ...(linked ? { recordKey } : {}), ...hashed, time: Date.now() });
        return applyRecord(state, rec, key);
      }
      let settle: { resolve: (r: CacheRecord) => void; reject: (e: unknown) => void } | undefined;
      if (inflight) {
        const mine = new Promise<CacheRecord>((resolve, reject) => (settle = { resolve, reject }));
        mine.catch(() => undefined);
        inflight.set(recordKey, mine);
      }
      try {
        const record = await executeStep();
        settle?.resolve(record);
        return applyRecord(state, record, key);
      } catch (e) {
        inflight?.delete(recordKey);
        settle?.reject(e);
        throw e;
      }
    } catch (e) {
      const located = locate(e, raw, opts.parsed.file);
      // as a user, a refused chown or mount is reported as what it is: kiln needs root
      const err = rootlessFailure(located) ?? needsRootError(located) ?? located;
      opts.emit({ type: 'step-error', step, message: err.message, time: Date.now() });
      throw err;
    }
  }

  /** `COPY --from` / `RUN --mount from=`: a stage, or an image for the platform of the stage that uses it (as BuildKit). */
  async function resolveFrom(ref: string, platform: Platform, from: PlanStage): Promise<StageResult | { image: LayerRef[]; key: Digest }> {
    // every stage, not only the planned ones: an ONBUILD trigger may name one nothing else needs
    const byName = plan.allStages.find((s) => s.name !== undefined && s.name === ref.toLowerCase());
    const index = byName ? byName.index : /^\d+$/.test(ref) ? Number(ref) : undefined;
    if (index !== undefined) {
      // the planner refuses this for the Dockerfile's own instructions; a trigger could otherwise wait on its own stage
      if (index >= from.index) {
        throw new KilnError('USAGE', `stage "${ref}" is defined at or after the stage that names it (an ONBUILD trigger of its base image): kiln builds a stage only from stages above it`);
      }
      return stageResult(index);
    }
    const img = await opts.images.resolve(ref, platform, signal);
    return { image: img.layers, key: img.manifestDigest };
  }

  /**
   * A step's history entry. A step that ran is timed now (its record keeps that time, so a cached
   * rebuild shows when the layer was made, as BuildKit's cache refs do); a metadata step is timed only
   * by SOURCE_DATE_EPOCH.
   */
  function historyEntry(created_by: string, empty: boolean, timed = true): HistoryEntry {
    const h: HistoryEntry = { ...(timed || opts.sourceDateEpoch !== undefined ? { created: timestamp(opts.sourceDateEpoch) } : {}), created_by, comment: 'buildkit.dockerfile.v0' };
    if (empty) h.empty_layer = true;
    return h;
  }

  try {
    return await stageResult(plan.targetIndex);
  } catch (e) {
    // let the other stages notice the abort and release what they hold
    await Promise.allSettled(results.values());
    throw e;
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
  }
}

/** A run-first step, run: its key inputs, and an execute that hands back what already ran. */
async function keyedStep(prepared: PreparedStep | RunFirstStep): Promise<PreparedStep> {
  if (!('runFirst' in prepared)) return prepared;
  const outcome = await prepared.execute();
  return { ...(await prepared.key()), execute: () => Promise.resolve(outcome) };
}

function metaOf(config: ImageConfig): MetaState {
  const m: MetaState = { config: structuredClone(config.config ?? {}), cmdSetInStage: false };
  if (config.author) m.author = config.author;
  return m;
}

/**
 * A copy of a finished stage's draft that the next stage may append to: the
 * arrays that grow per step (history, diff_ids, layers) are copied once here so
 * each step appends in place instead of copying them (O(N) per stage, not O(N²)).
 */
function ownedDraft(d: ImageDraft): ImageDraft {
  const config: ImageConfig = { ...d.config, rootfs: { ...d.config.rootfs, diff_ids: [...d.config.rootfs.diff_ids] }, history: [...(d.config.history ?? [])] };
  return { ...d, config, layers: [...d.layers] };
}

// The draft of a running stage is owned by that stage (see ownedDraft and baseState):
// steps append to it in place; nothing keeps an earlier step's view of it.
function withMeta(state: StageState, meta: MetaState, history: HistoryEntry | undefined, key: Digest): StageState {
  const config = state.draft.config;
  config.config = meta.config;
  if (history) (config.history ??= []).push(history);
  if (meta.author !== undefined) config.author = meta.author;
  return { ...state, meta, key };
}

function applyRecord(state: StageState, rec: CacheRecord, key: Digest): StageState {
  const config = state.draft.config;
  config.config = state.meta.config;
  (config.history ??= []).push(rec.history);
  if (rec.layer) {
    config.rootfs.diff_ids.push(rec.layer.diffID);
    state.draft.layers.push({ descriptor: { mediaType: rec.layer.mediaType, digest: rec.layer.digest, size: rec.layer.size }, diffID: rec.layer.diffID });
  }
  return { ...state, key };
}

/**
 * What a step that touches the file system does, for its key: the expanded instruction, and what of
 * the image config it depends on. The metadata instructions do not move the key (see runStep), so
 * everything they set that a step uses is named here: a RUN's environment, user, shell and working
 * directory (BuildKit's ExecOp carries them), the directory WORKDIR makes and the user who owns it,
 * the working directory a relative COPY or ADD destination is under.
 */
function stepOp(instr: Extract<Instruction, { kind: 'RUN' | 'COPY' | 'ADD' | 'WORKDIR' }>, config: ContainerConfig): unknown {
  const op = opOf(instr) as Record<string, unknown>;
  const workdir = config.WorkingDir ?? '';
  if (instr.kind === 'RUN') return { ...op, runEnv: config.Env ?? [], user: config.User ?? '', shell: config.Shell ?? null, workdir };
  if (instr.kind === 'WORKDIR') return { ...op, workdir, user: config.User ?? '' };
  return { ...op, workdir };
}

/** The parts of an expanded instruction that define what it does (never its position, comment or spelling). */
function opOf(instr: Instruction): unknown {
  const { range: _r, original: _o, comment: _c, keyword: _k, ...rest } = instr;
  if ('trigger' in rest) return { ...rest, trigger: opOf(rest.trigger) };
  return rest;
}

/** The steps BuildKit shows as a vertex of their own, and so numbers within the stage. */
function isVertexStep(instr: Instruction): boolean {
  return instr.kind === 'RUN' || instr.kind === 'COPY' || instr.kind === 'ADD' || instr.kind === 'WORKDIR';
}

function stepRef(stage: PlanStage, instr: Instruction, index: number, total: number, platform: Platform, target: string | undefined, onlyStage: boolean): StepRef {
  const ref: StepRef = {
    // one solve per target platform: the target keeps ids unique across them
    id: `${target !== undefined ? `${target} ` : ''}${stage.index}/${instr.range.start.line}`,
    stage: stage.index,
    index,
    total,
    text: instr.original,
    line: instr.range.start.line,
  };
  if (stage.name !== undefined) ref.stageName = stage.name;
  if (onlyStage) ref.onlyStage = true;
  if (target !== undefined) {
    ref.platform = formatPlatform(platform);
    ref.target = target;
  }
  return ref;
}

function timestamp(epoch: number | undefined): string {
  const d = epoch === undefined ? new Date() : new Date(epoch * 1000);
  return isoSeconds(d);
}

/** How long CPU-bound work runs before it lets signal handlers and I/O callbacks in. */
export const YIELD_EVERY_MS = 50;

export function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function cancelled(signal: AbortSignal): KilnError {
  const r: unknown = signal.reason;
  if (isKilnError(r)) return r;
  return new KilnError('CANCELLED', 'build cancelled');
}

/** Attaches the instruction's location to errors that lack one, keeping the error itself (its class and typed fields). */
function locate(e: unknown, instr: Instruction, file: string): KilnError {
  if (isKilnError(e)) {
    if (e.code === 'CANCELLED') return e;
    return e.at({ file, line: instr.range.start.line });
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new KilnError('INTERNAL', msg, { location: { file, line: instr.range.start.line }, cause: e });
}
