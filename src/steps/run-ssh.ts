import type { SshMount } from '../frontend/instructions.js';
import type { SshMountSpec } from '../sandbox/run-mounts.js';

/** An SSH agent the build may forward to `RUN --mount=type=ssh,id=…` (`--ssh`). */
export interface SshSource {
  id: string;
  /** Agent socket or key files; empty = $SSH_AUTH_SOCK. */
  paths: string[];
}

/**
 * `RUN --mount=type=ssh`: the agent socket of the matching `--ssh` source (the
 * first path, else $SSH_AUTH_SOCK, BuildKit's default); none when the build
 * forwards no such agent, and the sandbox then fails a required mount.
 */
export function sshMount(m: SshMount, agents: readonly SshSource[]): () => Promise<SshMountSpec> {
  const s = agents.find((x) => x.id === m.id);
  const socket = s ? (s.paths[0] ?? process.env['SSH_AUTH_SOCK']) : undefined;
  return async () => ({ type: 'ssh', id: m.id, ...(m.target !== undefined ? { target: m.target } : {}), required: m.required, ...(socket ? { socket } : {}) });
}
