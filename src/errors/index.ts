/**
 * errors/ — kiln's error model: KilnError with a code, one printable line
 * naming file, line and cause, and typed subclasses that keep their data
 * (RunFailedError: exit code, output tail, step, log file; RegistryError: HTTP
 * status and OCI error code); `at()` adds a Dockerfile location to an error
 * without re-wrapping it. Also printable(), which neutralises hostile text
 * before it reaches a terminal. Every folder may import it.
 * May import: nothing under src/.
 */
export { KilnError, RegistryError, RunFailedError, isKilnError } from './kiln-error.js';
export { printable, printableJson, MAX_MESSAGE_LENGTH } from './printable.js';
export type { ErrorCode, KilnErrorOptions, SourceLocation } from './kiln-error.js';
export { needsRootError } from './needs-root.js';
export { StoreCorruptError } from './store-corrupt.js';
