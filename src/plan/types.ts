/**
 * The BuildPlan the solver consumes. How to walk it:
 *
 *   for (const stage of plan.stages)             // dependencies first (`deps` point backwards)
 *     base image → its config Env
 *     const scope = StageVars.forStage(plan, stage, baseEnv, parsed.directives.escape);
 *     for (const raw of stage.instructions) {
 *       const { instruction, vars } = scope.next(raw);   // expanded as Docker does, and what it saw
 *       // cache key / history: vars.args where !hidden; RUN env: vars.env + vars.args + vars.hiddenEnv
 *     }
 */
import type { Platform } from '../image/types.js';
import type { FromInstruction, Instruction } from '../frontend/instructions.js';

/** Where a stage starts from. `image` refs are already expanded (global ARGs, predefined args). */
export type StageBase = { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

export interface PlanStage {
  /** Position of the FROM in the Dockerfile (0-based); stable across pruning, used by `COPY --from=<n>`. */
  index: number;
  /** `AS name`, lower-cased (BuildKit compares stage names case-insensitively). */
  name?: string;
  base: StageBase;
  /** `FROM --platform=…` after expansion with global ARGs and predefined args; undefined = target platform. */
  platform?: string;
  from: FromInstruction;
  /** Instructions after FROM up to the next FROM, unexpanded. */
  instructions: Instruction[];
  /** Stage indexes this stage needs first (FROM <stage>, COPY --from=<stage>, RUN --mount from=<stage>), sorted, unique. */
  deps: number[];
  /**
   * Values of global ARGs (after build args) that this stage's FROM line saw.
   * Inside the stage a global ARG is visible only once redeclared with `ARG NAME`;
   * `StageVars` implements that.
   */
  globalArgs: Record<string, string>;
  /** Names of every ARG declared in this stage (in order), for outline and unused-build-arg detection. */
  declaredArgs: string[];
}

/** A predefined arg: usable without declaration in FROM; inside a stage after `ARG NAME`. */
export interface PredefinedArg {
  name: string;
  value: string;
  /** Proxy args: passed to RUN even when undeclared, but never recorded in history nor in cache keys. */
  hidden: boolean;
}

export interface BuildPlan {
  /** Only the stages the target needs, dependencies before dependants. */
  stages: PlanStage[];
  /**
   * Every stage of the Dockerfile, in order: an ONBUILD trigger of a base image may name a stage
   * that nothing else in the Dockerfile names (`ONBUILD COPY --from=builder …`), which is then
   * built when the trigger reaches it, as BuildKit resolves a trigger's stages.
   */
  allStages: PlanStage[];
  /** Stage index (PlanStage.index) of the target; it is the last element of `stages`. */
  targetIndex: number;
  /** Global ARGs (declared before the first FROM) with their resolved values; unset ones are absent. */
  globalArgs: Record<string, string>;
  /** Every predefined arg for this build (platform family always, proxy family when given as build args). */
  predefinedArgs: PredefinedArg[];
  /** The `--build-arg` values as given. */
  buildArgs: Record<string, string>;
  /** Build args that no ARG declares (global ARGs and ARGs of the stages built), predefined args excepted. */
  unusedBuildArgs: string[];
  targetPlatform: Platform;
  buildPlatform: Platform;
  file: string;
}

export interface PlanOptions {
  target?: string;
  /**
   * Names given a `--build-context` (normalised as `namedContextKey` does): a
   * stage of such a name is replaced by the context, as in buildx. The stage
   * keeps its name and FROM line (for display) but starts from the image
   * `name`, which the image source resolves to the context, with no steps.
   */
  namedContexts?: ReadonlySet<string>;
  buildArgs: Record<string, string>;
  targetPlatform: Platform;
  buildPlatform: Platform;
}

export type { StepVars } from '../frontend/var-scope.js';
