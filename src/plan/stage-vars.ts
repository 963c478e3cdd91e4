/** ARG/ENV scoping for a planned stage: VarScope seeded from the plan. */
import { VarScope } from '../frontend/var-scope.js';
import type { BuildPlan, PlanStage } from './types.js';

export class StageVars extends VarScope {
  /** The scope at the start of `stage`, given its base image's Env list (empty for scratch). */
  static forStage(plan: BuildPlan, stage: PlanStage, baseEnv: string[] = [], escape: '\\' | '`' = '\\'): StageVars {
    return new StageVars({
      globalArgs: stage.globalArgs, predefined: plan.predefinedArgs, buildArgs: plan.buildArgs, baseEnv, escape, file: plan.file,
    });
  }
}
