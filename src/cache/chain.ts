import type { Digest } from '../image/digest.js';
import { stepCacheKey, type StepKeyInput } from './keys.js';

/** The inputs of one step's cache key; kept per Dockerfile position so a miss can be explained. */
export type KeyParts = StepKeyInput;

export function cacheKey(parts: KeyParts): Digest {
  return stepCacheKey(parts);
}
