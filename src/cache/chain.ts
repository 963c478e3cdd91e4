import type { Digest } from '../image/digest.js';
import { stepCacheKey } from './keys.js';

/** The inputs of one step's cache key; kept per Dockerfile position so a miss can be explained. */
export interface KeyParts {
  /** The parent step's key, or the base image's manifest digest. */
  parent: string;
  /** The expanded instruction, without position, comment or spelling. */
  op: unknown;
  /** Build args the step can see (proxy args excluded). */
  env: Record<string, string>;
  /** Content digests of what the step reads (COPY sources, bind mounts). */
  inputs: string[];
}

export function cacheKey(parts: KeyParts): Digest {
  return stepCacheKey(parts);
}
