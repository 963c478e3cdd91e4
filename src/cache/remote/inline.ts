import type { ImageConfig } from '../../image/types.js';
import { INLINE_CACHE_FIELD, type CacheDocument } from '../document.js';
import type { CacheRecord } from '../records.js';

/**
 * `--cache-to type=inline`: the records of the final image's own steps
 * (mode=min only) travel in its config, so `--cache-from` the image itself
 * finds them; read back by the registry backend.
 */
export function withInlineCache(config: ImageConfig, records: CacheRecord[]): void {
  const doc: CacheDocument = { version: 1, records, mounts: [] };
  (config as ImageConfig & Record<string, unknown>)[INLINE_CACHE_FIELD] = doc;
}

/** The inline cache document of an image config, when it has one. */
export function inlineCacheOf(config: unknown): CacheDocument | undefined {
  return (config as { [INLINE_CACHE_FIELD]?: CacheDocument } | undefined)?.[INLINE_CACHE_FIELD];
}
