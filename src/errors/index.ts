export { KilnError, isKilnError } from './kiln-error.js';
export { printable, printableJson, MAX_MESSAGE_LENGTH } from './printable.js';
export type { ErrorCode, SourceLocation } from './kiln-error.js';
export { needsRootError } from './needs-root.js';
export { StoreCorruptError } from './store-corrupt.js';
