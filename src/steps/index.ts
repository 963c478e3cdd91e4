/**
 * steps/ — what each instruction means on disk, behind one
 * `prepareStep(step, ctx)`: COPY/ADD (context, stages, URLs, git, archives,
 * heredocs), RUN (argv, mounts, secrets, SSH, network and security checked
 * against the build's entitlements) and WORKDIR, each in two phases (the
 * inputs of its cache key, then `execute` on a miss, with its measured time
 * split); metadata instructions in meta.ts. A step sees the build only
 * through StepContext: it never opens the store, the context or a registry
 * itself.
 * May import: context/, errors/, events/, frontend/, image/, layer/, rootless/, sandbox/, spec/, store/.
 */
export { prepareStep } from './prepare.js';
export type { FsInstruction, PreparedStep, SourceImage, StepContext, StepInput, StepOutcome } from './prepare.js';
export { planCopy, type CopyParams, type CopyResult } from './copy.js';
export { executeRun, runFailure, type RunStepInput, type RunStepResult } from './run.js';
export { applyMeta, isMetaInstruction, commandLine, DEFAULT_SHELL, type MetaInstruction, type MetaState } from './meta.js';
