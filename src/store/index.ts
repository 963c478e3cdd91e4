/** The local store: blobs, names, snapshots, metadata, GC and checks. */
export { Store, REF_ANNOTATION, defaultRoot } from './store.js';
export type { StoreOpenOptions, IndexEntry, BlobOrigin, LayerInput, PutImageOptions } from './store.js';
export type { BlobStore, RefStore, BlobWriteExpectation } from './types.js';
export { storeLayout, type StoreLayout } from './layout.js';
export type { LayerExtractor } from './snapshots.js';
export { prune, autoGc, defaultKeepStorage, type PruneOptions, type PruneResult } from './gc.js';
export { storeUsage } from './usage.js';
export { parseSize, parseDuration, keepStorageSetting } from './size.js';
export { fsck, type FsckReport, type FsckProblem, type FsckProblemKind } from './fsck.js';
