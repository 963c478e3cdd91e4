import type { Instruction } from '../frontend/instructions.js';
import { KilnError } from '../errors/index.js';
import { checkRunNetwork } from './run-network.js';
import { checkRunSecurity } from './run-security.js';
import type { RunPolicy } from './run-policy.js';

/**
 * BuildKit's `ValidateEntitlements`: every RUN the build will run is checked
 * against what the build allows before the first step starts, so a denied
 * `RUN --network=host` or `--security=insecure` never follows work already
 * done. The error names the RUN's line. (ONBUILD triggers come with the base
 * image; `prepareRun` checks them when they are reached.)
 */
export function validateEntitlements(instructions: readonly Instruction[], policy: RunPolicy, file: string): void {
  for (const instr of instructions) {
    if (instr.kind !== 'RUN') continue;
    try {
      checkRunNetwork(instr, policy);
      checkRunSecurity(instr, policy);
    } catch (e) {
      if (!(e instanceof KilnError)) throw e;
      throw new KilnError(e.code, e.message, { location: { file, line: instr.range.start.line } });
    }
  }
}
