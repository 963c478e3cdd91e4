import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportMounts } from '../../src/cache/mounts.js';
import { cacheMountsRoot, listCacheDirs } from '../../src/sandbox/cache-mounts.js';
import { openLockFile, tryFlock, unflock } from '../../src/store/flock.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * `--cache-to …,cache-mounts=true` reads each cache mount as a whole tree. A RUN of another build
 * using the cache at that moment could swap one of its directories for a symlink to a host
 * directory between the walk's lstat and its reads, and the host's files would land in the export
 * (and in a registry). A cache is exported only while no RUN holds it; a busy one is left out of
 * that export with a warning.
 */
let b: Bench;
beforeAll(async () => {
  b = await bench();
  const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN --mount=type=cache,id=busy-cache,target=/c echo kept > /c/f\n` });
  await b.build(ctx);
});
afterAll(async () => {
  await b.cleanup();
});

describe('exporting cache mounts', () => {
  it('leaves out a cache a RUN holds, with a warning, and exports it once it is free', async () => {
    const [name] = await listCacheDirs(b.root);
    expect(name).toBeDefined();
    // as a RUN of another build holds it (a shared lock on its lock file)
    const fh = await openLockFile(path.join(cacheMountsRoot(b.root), `${name!}.lock`));
    try {
      expect(tryFlock(fh.fd, 'shared')).toBe(true);
      const held = await exportMounts(await b.store());
      expect(held.mounts).toEqual([]);
      expect(held.busy).toEqual([name]);

      const dest = await mkdtemp(path.join(b.dir, 'cache-out-'));
      const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo other > /o\n` });
      const { events } = await b.build(ctx, { cacheTo: [{ type: 'local', dest, mode: 'min', cacheMounts: true }] });
      const warnings = events.flatMap((e) => (e.type === 'warning' ? [e.message] : []));
      expect(warnings.some((m) => m.includes(name!) && /in use by a RUN of another build/.test(m))).toBe(true);
    } finally {
      unflock(fh.fd);
      await fh.close();
    }
    const free = await exportMounts(await b.store());
    expect(free.busy).toEqual([]);
    expect(free.mounts.map((m) => m.dir)).toEqual([name]);
  });
});
