/**
 * store/ — the local store: content-addressed blobs, image names, layer
 * snapshots (extracted by the LayerExtractor given to Store.open), cache
 * records' metadata, locks, usage, garbage collection and fsck.
 * May import: errors/, image/, layer/, rootless/, sandbox/, spec/, sys/.
 */
export { Store, REF_ANNOTATION, defaultRoot } from './store.js';
export type { StoreOpenOptions, IndexEntry, BlobOrigin, LayerInput, PutImageOptions } from './store.js';
export type { BlobStore, RefStore, BlobWriteExpectation } from './types.js';
export { storeLayout, type StoreLayout } from './layout.js';
export type { LayerExtractor } from './snapshots.js';
export { prune, autoGc, defaultKeepStorage, type PruneOptions, type PruneResult } from './gc.js';
export { storeUsage } from './usage.js';
export { parseSize, parseDuration, keepStorageSetting } from './size.js';
export { fsck, type FsckReport, type FsckProblem, type FsckProblemKind } from './fsck.js';
