import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/store/store.js';
import type { LayerExtractor } from '../../src/store/snapshots.js';
import { expectValidStore } from './oci-validate.js';

/** A fresh directory under the system temp dir; `cleanup` removes it. */
export async function tempDir(prefix = 'kiln-test-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/**
 * A Store on a fresh temp root; `cleanup` checks every document in it against
 * the OCI schemas (so each manifest, index and config any test made is
 * validated), then closes it and removes the root.
 */
export async function tempStore(opts: { schemaCheck?: boolean; extractLayer?: LayerExtractor } = {}): Promise<{ store: Store; root: string; cleanup: () => Promise<void> }> {
  const dir = await tempDir('kiln-store-');
  const store = await Store.open(join(dir.path, 'root'), opts.extractLayer ? { extractLayer: opts.extractLayer } : {});
  return {
    store,
    root: store.root,
    cleanup: async () => {
      try {
        // a test that damages its store on purpose opts out
        if (opts.schemaCheck !== false) await expectValidStore(store);
      } finally {
        await store.close();
        await dir.cleanup();
      }
    },
  };
}
