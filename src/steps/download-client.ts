/**
 * The HTTP client ADD downloads with, behind a module of its own so that
 * copy-url.ts can load it lazily (a cached build never loads undici). The
 * re-export is static on purpose: it gives the named exports of the CommonJS
 * package the same way from dist/ and from the bundle (scripts/bundle.mjs),
 * where a dynamic `import('undici')` has differed between bundlers.
 */
export { fetch } from 'undici';
