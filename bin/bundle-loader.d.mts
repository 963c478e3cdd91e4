// Types of bin/bundle-loader.mjs (plain JavaScript, run before any compiled code; the code is in bin/bundle-loader.cjs).
export declare const BUNDLE_FILE: string;
export declare const CODE_CACHE_FILE: string;
/** Packages bundled into files of their own beside main.cjs (file name → package), required from it as `./<file>`. */
export declare const SIBLING_BUNDLES: Readonly<Record<string, string>>;
export declare const SIBLING_FILES: readonly string[];
/** Node's CommonJS wrapper, which main.cjs is written inside. */
export declare const WRAPPER_HEAD: string;
export declare function codeCacheFile(bundleFile: string): string;
/** main.cjs, whose exports are the CLI's `main`; or, with `name`, a sibling bundle, whose exports are its package's. */
export declare function loadBundle(dir: string, bundleMtimeMs?: number): { exports: { main(argv: string[]): Promise<number> }; cacheUsed: boolean; cacheRejected: boolean };
export declare function loadBundle(dir: string, bundleMtimeMs: number | undefined, name: string): { exports: unknown; cacheUsed: boolean; cacheRejected: boolean };
/** A bundle's text and its code cache (undefined when absent or older than the bundle), read into one buffer. */
export declare function readBundle(file: string, cacheFile: string, bundleMtimeMs?: number): { source: string; cachedData: Buffer | undefined };
export declare function makeCodeCache(dir: string, warmups?: string[][], name?: string): Promise<Buffer>;
