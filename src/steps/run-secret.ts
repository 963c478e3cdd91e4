import type { SecretMount } from '../frontend/instructions.js';
import type { SecretMountSpec } from '../sandbox/run-mounts.js';
import { readSecretFile } from '../sandbox/secret-file.js';

/** A secret the build may hand to `RUN --mount=type=secret,id=…` (`--secret`). */
export interface SecretSource {
  id: string;
  /** A file whose bytes are the secret. */
  src?: string;
  /** An environment variable of the kiln process holding the secret. */
  env?: string;
}

/**
 * `RUN --mount=type=secret`: only whether the secret was given goes into the
 * cache key, never its bytes (as BuildKit); they are read when the RUN runs.
 */
export function secretMount(m: SecretMount, secrets: readonly SecretSource[], inputs: string[]): () => Promise<SecretMountSpec> {
  const s = secrets.find((x) => x.id === m.id);
  inputs.push(`secret:${m.id}:${s ? 'present' : 'absent'}`);
  return async () => {
    let data: Uint8Array | undefined;
    if (s?.src) data = await readSecretFile(s.src, s.id);
    else if (s?.env !== undefined && process.env[s.env] !== undefined) data = Buffer.from(process.env[s.env]!);
    return {
      type: 'secret',
      id: m.id,
      ...(m.target !== undefined ? { target: m.target } : {}),
      ...(m.env !== undefined ? { env: m.env } : {}),
      required: m.required,
      mode: m.mode,
      uid: m.uid,
      gid: m.gid,
      ...(data ? { data } : {}),
    };
  };
}
