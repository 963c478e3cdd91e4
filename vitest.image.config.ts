import { defineConfig } from 'vitest/config';

// `npm run test:image`: kiln's own image under podman (downloads Debian packages, Node and npm; see README "kiln in a container")
export default defineConfig({
  test: {
    include: ['test/rootless/kiln-image.e2e.ts'],
    globalSetup: ['test/setup/global-setup.ts'],
    pool: 'forks',
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
    reporters: ['default', 'json'],
    outputFile: { json: '.image-report.json' },
  },
});
