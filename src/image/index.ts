/**
 * image/ — the OCI image model: types, digests, media types, platforms, config
 * helpers, canonical JSON, conversions, shape checks of documents read from
 * hostile sources, and the BlobStore port stores implement. Pure data and
 * functions; every folder that handles images imports it.
 * May import: errors/.
 */
export * from './types.js';
export { MediaType, isIndexMediaType, isManifestMediaType, isSchema1MediaType, layerCompression, type MediaTypeName } from './media-types.js';
export { isDigest, parseDigest, digestHex, sha256, digestOfHash, type Digest } from './digest.js';
export type { Image, Layer, LayerRef } from './image.js';
export { canonicalJSON, canonicalBytes } from './canonical-json.js';
export { parsePlatform, formatPlatform, normalisePlatform, hostPlatform, platformMatches, selectManifest } from './platform.js';
export {
  DEFAULT_PATH,
  emptyConfig,
  patchContainerConfig,
  getEnv,
  withEnv,
  withLabels,
  withHistory,
  withLayer,
  withCreated,
  fillHistoryTimes,
  appendLayer,
  patchDraftConfig,
  type ImageDraft,
} from './config.js';
export { manifestToDocker, manifestToOci, indexToDocker, indexToOci } from './convert.js';
export type { BlobStore, BlobWriteExpectation, PartialDownload } from './blob-store.js';
export { parseJSONSafe, descriptorShape, indexShape, manifestShape, configShape, ShapeError, type Shape } from './document-shapes.js';
