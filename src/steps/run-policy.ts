import type { NetworkMode } from '../sandbox/network-mode.js';
import type { SandboxRequest } from '../sandbox/sandbox.js';
import type { Entitlement } from './entitlements.js';
import type { SecretSource } from './run-secret.js';
import type { SshSource } from './run-ssh.js';

/**
 * What the person starting the build lets its RUN steps do, resolved once
 * from the build's options: the Dockerfile can ask for less, never for more.
 */
export interface RunPolicy {
  /** The network of a RUN that does not choose one (`--network`). */
  network: NetworkMode;
  /** `--allow`; `--network host` adds `network.host`, as buildx does. */
  entitlements: ReadonlySet<Entitlement>;
  /** `--secret`: what `RUN --mount=type=secret,id=…` may read. */
  secrets: readonly SecretSource[];
  /** `--ssh`: the agents `RUN --mount=type=ssh,id=…` may reach. */
  ssh: readonly SshSource[];
  /** cgroup limits, rlimits and extra /etc/hosts lines of every RUN. */
  limits?: SandboxRequest['limits'];
  /** The OCI runtime (default runc). */
  runtime?: string;
}
