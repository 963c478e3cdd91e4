/** kiln's public library API. */
export { KilnError, isKilnError } from './errors/index.js';
export type { ErrorCode, SourceLocation } from './errors/index.js';
export * from './image/types.js';
export { MediaType } from './image/media-types.js';
export type { Digest } from './image/digest.js';
export { VERSION } from './version.js';
