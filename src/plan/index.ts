/**
 * plan/ — from parsed instructions to a build plan: stages and their
 * dependencies, ARG scoping and predefined args, the target and what it
 * needs, the outline/targets views, and which stages the SBOM scan build args
 * (BUILDKIT_SBOM_SCAN_*) ask for. Pure: no file, store or network.
 * May import: errors/, frontend/, image/.
 */
export * from './types.js';
export { planBuild, splitStages, resolveGlobalArgs, type RawStage } from './plan.js';
export { StageVars } from './stage-vars.js';
export { formatPlatform, predefinedArgs } from './predefined.js';
export { outline, listTargets, type Outline, type OutlineArg, type OutlineUse, type OutlineOptions, type TargetInfo } from './outline.js';
