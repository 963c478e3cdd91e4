/**
 * builder/ — the orchestrator: the `build()` entry and its wiring: `resolveBuildOptions()` checks
 * the options once, then the build opens the store, the context and the
 * registry, hands the solver its ports (ImageSource, StepExecutors,
 * CacheIndex) and writes the outputs (store, push, archives, attestations,
 * signatures). It is the one folder that knows every other; nothing below it
 * imports it back (only cli/ and the public API do).
 * May import: attest/, cache/, context/, errors/, events/, export/, frontend/, fs/, image/, layer/, plan/, registry/, rootless/, sandbox/, sbom/, sign/, solver/, spec/, steps/, store/, version.ts.
 */
export { build, runBuild } from './build.js';
export { resolveBuildOptions } from './resolve-options.js';
export type { BuildOptions, BuildResult, PlatformResult, OutputSpec } from './options.js';
