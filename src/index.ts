/**
 * kiln's public library API: build images from Dockerfiles, move them between
 * registries, and read the local store. The CLI is a thin layer over these.
 */
export { build } from './builder/build.js';
export type { BuildOptions, BuildResult, PlatformResult, OutputSpec, LayerCompressionAttrs, SecretSource, SshSource, ResourceLimits } from './builder/options.js';
export type { BuildEvent, BuildEventListener, StepRef, StepTimings, StageInfo, ResourceUsage } from './events/index.js';
export type { CacheImportSpec, CacheExportSpec, CacheCompression } from './cache/spec.js';
export type { Compression } from './layer/types.js';
export type { NetworkMode } from './sandbox/network-mode.js';
export type { Ulimit } from './sandbox/rlimits.js';
export type { ExtraHost } from './sandbox/bundle.js';
export type { Annotation, AnnotationTarget, AttestationOptions } from './builder/attestations.js';
export type { ProvenanceMode, ProvenanceVersion } from './attest/index.js';
export { openContextSource, type ContextSource } from './builder/context-source.js';
export { parseNamedContext, type NamedContextSource, type GitCheckout } from './builder/named-contexts.js';

// buildx-style strings → the typed options above, so wrappers can take what users type
export { parseOutputSpec, parseSecretSpec, parseSshSpec, parseBuildArgs, parseAddHost, parseBuildContext } from './builder/options.js';
export { parseCacheFrom, parseCacheTo } from './cache/spec.js';
export { parseAttestSpec, parseAnnotation } from './builder/attestations.js';
export { csvFields, splitCsv, type CsvField } from './spec/csv.js';
export { parseSize, formatSize } from './spec/size.js';

// the progress displays of the CLI, for programs that want the same output from onEvent
export { createRenderer, type ProgressMode, type ProgressRenderer } from './cli/progress/render.js';
export { toSolveStatus, type SolveStatus } from './cli/progress/rawjson.js';

export { pull, push, copy, login, logout, parseReference, Reference, RegistryClient } from './registry/index.js';
export type { PullOptions, PullResult, PushOptions, PushResult, CopyOptions, CopyResult, RegistryClientOptions, RegistryEvent, LoginOptions } from './registry/index.js';

export { Store } from './store/store.js';
export { defaultRoot } from './store/layout.js';
export { saveOciArchive, saveDockerArchive, loadArchive } from './export/index.js';

export { parseDockerfile, expandInstruction, processWord, processWords, runChecks } from './frontend/index.js';
export { DockerfileError } from './frontend/index.js';
export type { Instruction, ParsedDockerfile, BuildWarning, TokenRef } from './frontend/index.js';
export { planBuild, outline, listTargets } from './plan/index.js';
export type { BuildPlan, PlanStage } from './plan/index.js';

export { KilnError, RegistryError, RunFailedError, StoreCorruptError, isKilnError } from './errors/index.js';
export type { ErrorCode, KilnErrorOptions, SourceLocation } from './errors/index.js';
export * from './image/types.js';
export type { Image, Layer, LayerRef } from './image/image.js';
export { MediaType } from './image/media-types.js';
export type { Digest } from './image/digest.js';
export { parsePlatform, formatPlatform, hostPlatform } from './image/platform.js';
export { writeReport, renderReportHtml, renderReportSvg, buildTimeline } from './report/index.js';
export { VERSION } from './version.js';
