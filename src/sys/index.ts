/**
 * sys/ — the one door to libc (through koffi): mount, flock, xattrs, malloc_trim and
 * errno for the folders that need system calls Node does not offer
 * (sandbox/, store/, layer/, context/ via fs/). It holds bindings only, no
 * policy.
 * May import: nothing under src/.
 */
export { libc, errno } from './libc.js';
export { trimFreedMemory } from './malloc.js';
