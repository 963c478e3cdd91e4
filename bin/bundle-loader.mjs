// The bundle loader for ES-module callers (scripts/bundle.mjs, the tests); bin/kiln requires
// bin/bundle-loader.cjs itself, which holds the code.
import loader from './bundle-loader.cjs';

export const { BUNDLE_FILE, CODE_CACHE_FILE, SIBLING_BUNDLES, SIBLING_FILES, WRAPPER_HEAD, codeCacheFile, loadBundle, makeCodeCache, readBundle } = loader;
