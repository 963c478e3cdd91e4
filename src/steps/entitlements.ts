import { KilnError } from '../errors/index.js';
import { NETWORK_HOST_ENTITLEMENT } from '../sandbox/network-mode.js';

/**
 * BuildKit's entitlements: what a build may do beyond the sandbox's
 * defaults, granted only by whoever starts the build (`--allow`), never by
 * the Dockerfile. Checked over every RUN before the build starts
 * (BuildKit's `ValidateEntitlements` over the definition) and again when a
 * step is prepared, which covers ONBUILD triggers from the base image.
 */
export const ENTITLEMENTS = [NETWORK_HOST_ENTITLEMENT, 'security.insecure'] as const;

export type Entitlement = (typeof ENTITLEMENTS)[number];

export function isEntitlement(value: string): value is Entitlement {
  return (ENTITLEMENTS as readonly string[]).includes(value);
}

/** `--allow` values as a set; an unknown name is a usage error, as in buildx. */
export function parseEntitlements(values: readonly string[]): Set<Entitlement> {
  const out = new Set<Entitlement>();
  for (const v of values) {
    if (!isEntitlement(v)) throw new KilnError('USAGE', `unknown entitlement "${v}" in --allow (known: ${ENTITLEMENTS.join(', ')})`);
    out.add(v);
  }
  return out;
}

/** The one-line error for a RUN that asks for what the build was not allowed: BuildKit's "… is not allowed", with the flag that grants it. */
export function entitlementDenied(asked: string, entitlement: Entitlement): KilnError {
  return new KilnError('USAGE', `${asked} needs --allow ${entitlement} (${entitlement} is not allowed)`);
}
