import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../../src/store/store.js';

/** A fresh directory under the system temp dir; `cleanup` removes it. */
export async function tempDir(prefix = 'kiln-test-'): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, cleanup: () => rm(path, { recursive: true, force: true }) };
}

/** A Store on a fresh temp root; `cleanup` closes it and removes the root. */
export async function tempStore(): Promise<{ store: Store; root: string; cleanup: () => Promise<void> }> {
  const dir = await tempDir('kiln-store-');
  const store = await Store.open(join(dir.path, 'root'));
  return {
    store,
    root: store.root,
    cleanup: async () => {
      await store.close();
      await dir.cleanup();
    },
  };
}
