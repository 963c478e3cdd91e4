/** ARG/ENV scoping for a planned stage: VarScope seeded from the plan. */
import { VarScope, type DeclaredArg } from '../frontend/var-scope.js';
import type { BuildPlan, PlanStage } from './types.js';

export class StageVars extends VarScope {
  /**
   * The scope at the start of `stage`, given its base image's Env list (empty for
   * scratch) and, for a stage built FROM another stage, the ARGs that stage ended with.
   */
  static forStage(plan: BuildPlan, stage: PlanStage, baseEnv: string[] = [], escape: '\\' | '`' = '\\', inheritedArgs: DeclaredArg[] = [], baseLabels: Readonly<Record<string, string>> = {}): StageVars {
    return new StageVars({
      globalArgs: stage.globalArgs, predefined: plan.predefinedArgs, buildArgs: plan.buildArgs, baseEnv, inheritedArgs, baseLabels, escape, file: plan.file,
    });
  }
}
