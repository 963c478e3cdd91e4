import type { PreparedStep, RunFirstStep, StepContext, StepInput } from './step-context.js';
import { prepareCopy } from './copy.js';
import { prepareWorkdir } from './workdir.js';

export type { FsInstruction, PreparedStep, RunFirstStep, SourceImage, StepContext, StepInput, StepKeyInputs, StepOutcome } from './step-context.js';

/**
 * What a file-system instruction means on disk, one family per file: COPY/ADD
 * (copy.ts), RUN (run.ts, with its mounts, network, security and heredocs in
 * run-*.ts and heredoc.ts), WORKDIR (workdir.ts). Config-only instructions
 * are applied by meta.ts.
 */
export async function prepareStep(step: StepInput, ctx: StepContext): Promise<PreparedStep | RunFirstStep> {
  const instr = step.instruction;
  switch (instr.kind) {
    case 'COPY':
    case 'ADD':
      return prepareCopy({ ...step, instruction: instr }, ctx);
    case 'WORKDIR':
      return prepareWorkdir(step, ctx);
    case 'RUN': {
      // the sandbox is loaded only by builds that RUN something
      const { prepareRun } = await import('./run.js');
      return prepareRun({ ...step, instruction: instr }, ctx);
    }
  }
}
