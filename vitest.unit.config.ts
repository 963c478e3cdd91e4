import { defineConfig } from 'vitest/config';

/**
 * `npm run test:unit`: the pure tests — parsing, planning, cache keys, layer codecs, matchers,
 * option resolution, the report — with no registry, no runc and no global setup, so they run in
 * seconds while iterating. Every file here also runs in `npm test`; a test that needs a registry,
 * the sandbox or the CLI binary belongs there only.
 */
export default defineConfig({
  test: {
    include: [
      'test/frontend/*.test.ts',
      'test/plan/*.test.ts',
      'test/check/rules.test.ts',
      'test/spec/*.test.ts',
      'test/image/*.test.ts',
      'test/cache/keys.test.ts',
      'test/context/dockerignore.test.ts',
      'test/context/glob.test.ts',
      'test/context/pattern-nfa.test.ts',
      'test/layer/write-layer.test.ts',
      'test/layer/tar-reader.test.ts',
      'test/builder/resolve-options.test.ts',
      'test/steps/entitlements.test.ts',
      'test/report/render.test.ts',
      'test/report/timeline.test.ts',
    ],
    pool: 'threads',
    testTimeout: 30_000,
  },
});
