/**
 * fs/ — paths inside a tree (an image, a stage, the build context) resolved
 * and opened without ever leaving it: symlinks are followed inside the root,
 * with a bounded number of hops.
 * May import: errors/, sys/.
 */
export { resolveInTree, hostLookup, MAX_SYMLINKS, type LinkLookup, type ResolveOptions } from './resolve-in-root.js';
export { openInRoot, fdPath, type OpenInRootOptions, type RootedOpen } from './open-in-root.js';
export { statAt, openDirChecked, type StatFields, type DirIdentity } from './stat-at.js';
