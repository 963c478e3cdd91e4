/**
 * events/ — the build's event contract: what a build reports while it runs
 * (steps starting, logging, finishing with their measured time split; pulls,
 * pushes, phases, warnings). Producers (build, solver, steps, the registry
 * progress adapter) and consumers (report, cli progress renderers, the public
 * API's `onEvent`) both import it, so neither side depends on the other. It
 * owns only types, and the clock step durations are measured with (clock.ts).
 * May import: image/ (types).
 */
export { monotonicMs } from './clock.js';
export type { BuildEvent, BuildEventListener, ResourceUsage, StageInfo, StepRef, StepTimings, TransferPhase } from './build-event.js';
