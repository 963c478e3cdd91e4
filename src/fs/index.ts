/** Paths inside a tree (an image, a stage, the build context) resolved without ever leaving it. */
export { resolveInTree, hostLookup, MAX_SYMLINKS, type LinkLookup, type ResolveOptions } from './resolve-in-root.js';
export { openInRoot, fdPath, type OpenInRootOptions, type RootedOpen } from './open-in-root.js';
