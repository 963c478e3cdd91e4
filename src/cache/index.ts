/**
 * cache/ — the build cache: step cache keys (what a step's result depends on,
 * and why two keys differ), step records in the store, and their export and
 * import (`--cache-to` / `--cache-from`: registry, local directory, inline).
 * It reads and writes through the store and the registry client and knows
 * nothing of Dockerfiles or of how a step runs.
 * May import: errors/, image/, layer/, registry/, sandbox/, spec/, store/.
 */
export { stepCacheKey, explainMiss, type StepKeyInput, type KeyParts } from './keys.js';
export { StoreCacheIndex, type CacheIndex, type CacheRecord } from './records.js';
export { parseCacheFrom, parseCacheTo, exportCache, ImportedCaches, LayeredCacheIndex, type CacheImportSpec, type CacheExportSpec, type RegistryAccess } from './transfer.js';
