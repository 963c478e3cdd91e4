/**
 * cli/ — the `kiln` command line: commander commands (one file each under
 * commands/), the global and registry flags, and the progress renderers
 * (tty, plain, rawjson) that draw a build's events. It maps flags to the
 * library's options and prints results and one-line errors; what a command
 * does lives in the folders it calls. Nothing under src/ imports cli/ except
 * the public API (for the renderers).
 * May import: attest/, builder/, cache/, context/, errors/, events/, export/, frontend/, fs/, image/, layer/, plan/, registry/, report/, rootless/, sandbox/, sign/, spec/, store/, version.ts.
 */
export { main } from './main.js';
export { createRenderer, type ProgressMode, type ProgressRenderer } from './progress/render.js';
