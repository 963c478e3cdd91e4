/**
 * solver/ — runs a build plan: schedules stages, computes each step's cache
 * key, looks it up, and executes only the misses through the StepExecutors
 * port, emitting the build's events and image history as it goes. It touches
 * no file, registry or process itself: images, steps and cache records come
 * in through its ports (ports.ts), which build/ implements.
 * May import: cache/, errors/, events/, frontend/, image/, layer/, plan/, rootless/, steps/.
 */
export { solve, type SolveOptions, type StageResult, type StageState, type FsStep, type StepExecutors, type PreparedStep } from './solver.js';
export type { BaseImage, ImageSource, StepOutcome } from './ports.js';
export { createdBy } from './history.js';
