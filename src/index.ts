/**
 * kiln's public library API: build images from Dockerfiles, move them between
 * registries, and read the local store. The CLI is a thin layer over these.
 */
export { build } from './build/build.js';
export type { BuildOptions, BuildResult, OutputSpec, SecretSource, SshSource, ResourceLimits } from './build/options.js';
export type { BuildEvent, StepRef, ResourceUsage } from './solver/events.js';

export { pull, push, copy, login, logout, parseReference, Reference, RegistryClient } from './registry/index.js';
export type { PullOptions, PullResult, PushOptions, PushResult, CopyOptions, CopyResult, RegistryClientOptions, RegistryEvent, LoginOptions } from './registry/index.js';

export { Store } from './store/store.js';
export { defaultRoot } from './store/layout.js';
export { saveOciArchive, saveDockerArchive, loadArchive } from './export/index.js';

export { parseDockerfile, expandInstruction, processWord, processWords, runChecks } from './frontend/index.js';
export type { Instruction, ParsedDockerfile, BuildWarning } from './frontend/index.js';
export { planBuild, outline, listTargets } from './plan/index.js';
export type { BuildPlan, PlanStage } from './plan/index.js';

export { KilnError, isKilnError } from './errors/index.js';
export type { ErrorCode, SourceLocation } from './errors/index.js';
export * from './image/types.js';
export type { Image, Layer, LayerRef } from './image/image.js';
export { MediaType } from './image/media-types.js';
export type { Digest } from './image/digest.js';
export { parsePlatform, formatPlatform, hostPlatform } from './image/platform.js';
export { writeReport, renderReportHtml, renderReportSvg, buildTimeline } from './report/index.js';
export { VERSION } from './version.js';
