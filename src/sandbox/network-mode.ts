import { KilnError } from '../errors/index.js';

/**
 * The network modes of a RUN, spelled as in BuildKit everywhere (the
 * Dockerfile's `RUN --network=`, `kiln build --network`, `kiln run
 * --network`, the library's options, the sandbox). Pure: the frontend checks
 * Dockerfile flags with it too.
 *
 * - `default`: a network namespace of its own with user-mode networking
 *   (slirp4netns): outbound connections work, the host's loopback services
 *   and abstract unix sockets do not.
 * - `none`: a network namespace with only `lo`.
 * - `host`: the host's network namespace; from a Dockerfile it needs the
 *   `network.host` entitlement (`--allow network.host`).
 */

export const NETWORK_MODES = ['default', 'none', 'host'] as const;

export type NetworkMode = (typeof NETWORK_MODES)[number];

export const NETWORK_MODES_TEXT = 'default, none or host';

export function isNetworkMode(value: string): value is NetworkMode {
  return (NETWORK_MODES as readonly string[]).includes(value);
}

/** The entitlement `RUN --network=host` needs, as BuildKit names it. */
export const NETWORK_HOST_ENTITLEMENT = 'network.host';

/** A `--network` flag value, or a one-line usage error naming the flag. */
export function parseNetworkMode(value: string, flag = '--network'): NetworkMode {
  if (isNetworkMode(value)) return value;
  throw new KilnError('USAGE', `${flag} must be ${NETWORK_MODES_TEXT}, not "${value}"`);
}
