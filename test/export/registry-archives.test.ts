import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadArchive } from '../../src/export/load.js';
import { Store } from '../../src/store/store.js';
import { makeBusyboxImage, pushWithSkopeo } from '../helpers/busybox.js';
import { tempDir } from '../helpers/temp-dir.js';

/** Archives skopeo writes from the real registry (docker://…) load into kiln with identical layers. */
let dir: Awaited<ReturnType<typeof tempDir>>;
let store: Store;
let remote: string;

beforeAll(async () => {
  dir = await tempDir('kiln-regarch-');
  store = await Store.open(join(dir.path, 'src'));
  await makeBusyboxImage(store, 'localhost/busybox:latest');
  remote = `${inject('registry').anon}/fixtures/busybox:latest`;
  pushWithSkopeo(store, 'localhost/busybox:latest', remote);
});
afterAll(async () => {
  await store.close();
  await dir.cleanup();
});

describe('archives from a registry', () => {
  it('skopeo copy docker://… to oci-archive and docker-archive both load with the same layers', async () => {
    const ociFile = join(dir.path, 'reg-oci.tar');
    const dockerFile = join(dir.path, 'reg-docker.tar');
    execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${remote}`, `oci-archive:${ociFile}`]);
    execFileSync('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${remote}`, `docker-archive:${dockerFile}:localhost/busybox:fromreg`]);
    const a = await Store.open(join(dir.path, 'a'));
    try {
      const fromOci = await loadArchive(a, ociFile);
      expect(fromOci).toHaveLength(1);
      expect(fromOci[0]!.refs).toEqual([]);
      const fromDocker = await loadArchive(a, dockerFile);
      expect(fromDocker[0]!.refs).toEqual(['localhost/busybox:fromreg']);
      const x = await a.getImage(fromOci[0]!.descriptor.digest);
      const y = await a.getImage('localhost/busybox:fromreg');
      const orig = await store.getImage('localhost/busybox:latest');
      expect(x.layers.map((l) => l.diffID)).toEqual(orig.layers.map((l) => l.diffID));
      expect(y.layers.map((l) => l.diffID)).toEqual(orig.layers.map((l) => l.diffID));
      // the docker-archive's uncompressed layer maps onto the compressed blob the OCI archive brought
      expect(y.layers.map((l) => l.digest)).toEqual(x.layers.map((l) => l.digest));
      expect(x.layers.map((l) => l.digest)).toEqual(orig.layers.map((l) => l.digest));
      expect(y.configDescriptor.digest).toBe(orig.configDescriptor.digest);
    } finally {
      await a.close();
    }
  });
});
