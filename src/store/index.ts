/**
 * store/ — the local store: an OCI image layout with kiln's own entries
 * beside it. Parts: blobs.ts (content-addressed files, partial downloads),
 * refs.ts (names in index.json), images.ts (reading and writing images),
 * metadata.ts (diffID index, blob origins), snapshots.ts (layers extracted by
 * the LayerExtractor given to Store.open), composed by the Store facade in
 * store.ts; layout.ts spells every path under the root; GC, usage and checks
 * in gc.ts, usage.ts, fsck.ts. The BlobStore port it implements lives in
 * image/blob-store.ts.
 * May import: errors/, fs/, image/, layer/, rootless/, spec/, sys/ (fsck is handed the sandbox's leftover probe: sandbox/ imports store/, not the reverse).
 */
export { Store, REF_ANNOTATION, defaultRoot } from './store.js';
export type { StoreOpenOptions, IndexEntry, BlobOrigin, LayerInput, PutImageOptions } from './store.js';
export type { BlobStore, RefStore, BlobWriteExpectation, PartialDownload } from './types.js';
export { BlobFiles } from './blobs.js';
export { RefIndex } from './refs.js';
export { ImageStore } from './images.js';
export { BlobMetadata } from './metadata.js';
export { storeLayout, type StoreLayout } from './layout.js';
export type { LayerExtractor } from './snapshots.js';
export { prune, autoGc, defaultKeepStorage, type PruneOptions, type PruneResult } from './gc.js';
export { storeUsage } from './usage.js';
export { parseSize, parseDuration, keepStorageSetting } from './size.js';
export { fsck, type FsckReport, type FsckProblem, type FsckProblemKind } from './fsck.js';
