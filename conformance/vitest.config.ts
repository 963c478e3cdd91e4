import { defineConfig } from 'vitest/config';

// `npm run conformance [DIR]` (scripts/conformance.mjs): the suites that need the corpora folder.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['conformance/**/*.test.ts'],
    globalSetup: ['test/setup/global-setup.ts'],
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.conformance-report.json' },
  },
});
