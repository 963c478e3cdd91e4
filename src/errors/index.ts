export { KilnError, RegistryError, RunFailedError, isKilnError } from './kiln-error.js';
export { printable, printableJson, MAX_MESSAGE_LENGTH } from './printable.js';
export type { ErrorCode, KilnErrorOptions, SourceLocation } from './kiln-error.js';
export { needsRootError } from './needs-root.js';
