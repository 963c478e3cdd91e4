/**
 * context/ — the trees a build reads files from, behind one FsView interface:
 * the build context (with `.dockerignore`, its pattern matcher and glob),
 * layered read-only views of image layers, and content hashing of a
 * selection of files with a stat-keyed hash cache. Reads never leave their
 * root. It knows nothing of instructions or of the store's layout.
 * May import: errors/, fs/, image/, layer/.
 */
export { BuildContext, type OpenContextOptions } from './build-context.js';
export { LayeredFs } from './layered-fs.js';
export { HashCache, hashFile } from './hash-cache.js';
export { hashSelection, SelectionHasher } from './content-hash.js';
export { PatternMatcher, readIgnoreFile, findIgnoreFile, loadIgnoreFile } from './dockerignore.js';
export { resolvePath, walk, type FsView, type FsNode, type HostFile } from './fs-view.js';
