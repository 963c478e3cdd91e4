/**
 * fs/ — paths inside a tree (an image, a stage, the build context) resolved
 * and opened without ever leaving it: symlinks are followed inside the root,
 * with a bounded number of hops. Also kiln's outputs written onto the host
 * without writing through a symlink someone put in their way.
 * May import: errors/, sys/.
 */
export { resolveInTree, hostLookup, MAX_SYMLINKS, type LinkLookup, type ResolveOptions } from './resolve-in-root.js';
export { openInRoot, openFileInRoot, fdPath, type OpenInRootOptions, type RootedFile, type RootedOpen } from './open-in-root.js';
export { statAt, openDirChecked, type StatFields, type DirIdentity } from './stat-at.js';
export { ReplacingFile, replaceFile, discardPendingFiles, type ReplaceFileOptions } from './replace-file.js';
export { followUserLink } from './user-path.js';
export { CREATE_NEW, createFileAt, ensureDirAt, openDirAt, pathAt, removeAt } from './write-at.js';
export { listBeneath, removeBeneath, statBeneath } from './beneath.js';
