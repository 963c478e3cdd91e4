export * from './types.js';
export { planBuild, splitStages, resolveGlobalArgs, type RawStage } from './plan.js';
export { StageVars } from './stage-vars.js';
export { formatPlatform, predefinedArgs } from './predefined.js';
export { outline, listTargets, type Outline, type OutlineArg, type OutlineUse, type OutlineOptions, type TargetInfo } from './outline.js';
