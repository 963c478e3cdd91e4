import type { RunInstruction } from '../frontend/instructions.js';
import type { NetworkMode } from '../sandbox/network-mode.js';
import { NETWORK_HOST_ENTITLEMENT } from '../sandbox/network-mode.js';
import { entitlementDenied } from './entitlements.js';
import type { RunPolicy } from './run-policy.js';

/**
 * `RUN --network=`: the step's own choice, else the build's default. The
 * host's network namespace needs the `network.host` entitlement (a build
 * started with `--network host` has it).
 */
export function runNetwork(instr: Pick<RunInstruction, 'network'>, policy: RunPolicy): NetworkMode {
  checkRunNetwork(instr, policy);
  return instr.network === undefined || instr.network === 'default' ? policy.network : instr.network;
}

/** Throws the entitlement error for a `RUN --network=host` the build does not allow. */
export function checkRunNetwork(instr: Pick<RunInstruction, 'network'>, policy: RunPolicy): void {
  if (instr.network === 'host' && !policy.entitlements.has(NETWORK_HOST_ENTITLEMENT)) throw entitlementDenied('RUN --network=host', NETWORK_HOST_ENTITLEMENT);
}
