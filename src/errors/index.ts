export { KilnError, isKilnError } from './kiln-error.js';
export type { ErrorCode, SourceLocation } from './kiln-error.js';
export { needsRootError } from './needs-root.js';
