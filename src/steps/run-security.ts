import type { RunInstruction } from '../frontend/instructions.js';
import { entitlementDenied } from './entitlements.js';
import type { RunPolicy } from './run-policy.js';

/**
 * `RUN --security=insecure`: every capability, no seccomp filter, no masked
 * paths. Only with the `security.insecure` entitlement; `sandbox` (the
 * default) needs nothing.
 */
export function runInsecure(instr: Pick<RunInstruction, 'security'>, policy: RunPolicy): boolean {
  checkRunSecurity(instr, policy);
  return instr.security === 'insecure';
}

/** Throws the entitlement error for a `RUN --security=insecure` the build does not allow. */
export function checkRunSecurity(instr: Pick<RunInstruction, 'security'>, policy: RunPolicy): void {
  if (instr.security === 'insecure' && !policy.entitlements.has('security.insecure')) throw entitlementDenied('RUN --security=insecure', 'security.insecure');
}
