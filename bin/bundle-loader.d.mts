// Types of bin/bundle-loader.mjs (plain JavaScript, run before any compiled code; the code is in bin/bundle-loader.cjs).
export declare const BUNDLE_FILE: string;
export declare const CODE_CACHE_FILE: string;
export declare function loadBundle(dir: string, bundleMtimeMs?: number): { exports: { main(argv: string[]): Promise<number> }; cacheUsed: boolean; cacheRejected: boolean };
export declare function makeCodeCache(dir: string, warmups?: string[][]): Promise<Buffer>;
