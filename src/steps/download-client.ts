/**
 * The HTTP client ADD downloads with, behind a module of its own so that
 * copy-url.ts can load it lazily (a cached build never loads undici). The
 * re-export is static on purpose: a dynamic `import('undici')` of the
 * CommonJS package gives only its `default` once the CLI is bundled
 * (scripts/bundle.mjs), where Node itself also finds the named exports.
 */
export { fetch } from 'undici';
