/**
 * cache/ — the build cache: step cache keys (what a step's result depends on,
 * and why two keys differ), step records in the store, the `--cache-from` /
 * `--cache-to` specs, the cache artifact format, cache-mount transfer, and
 * one backend per file under remote/ (registry, local directory, inline) with
 * the import/export the build calls. It reads and writes through the store,
 * the registry client and the OCI-layout writer, and knows nothing of
 * Dockerfiles or of how a step runs.
 * May import: errors/, export/ (the local cache is an OCI layout), image/, layer/, registry/, sandbox/, spec/, store/.
 */
export { stepCacheKey, explainMiss, type StepKeyInput, type KeyParts } from './keys.js';
export { StoreCacheIndex, type CacheIndex, type CacheRecord } from './records.js';
export { parseCacheFrom, parseCacheTo, type CacheImportSpec, type CacheExportSpec, type CacheCompression } from './spec.js';
export { importCaches, exportCaches, inlineCacheRecords, withInlineCache, type RegistryAccess, type CacheExportContext } from './remote/index.js';
