import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { push } from '../../src/registry/index.js';
import { parseReference } from '../../src/registry/reference.js';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { makeRandomImage, tempStore, uniqueRepo } from '../registry/helpers/images.js';

/**
 * A pulled image whose layers cannot be unpacked (here: random bytes labelled
 * gzip) is a failed pull: non-zero exit, a one-line error, the name left as
 * it was, no snapshot, and a store fsck finds clean.
 */
const reg = inject('registry');

describe('a pull whose layers cannot be unpacked', () => {
  beforeAll(async () => {
    await rebuildIfStale(['cli/commands/pull', 'registry/pull', 'store/store']);
  });

  it('fails, keeps the previous name and leaves the store consistent', async () => {
    const src = await tempStore();
    const dest = await tempStore();
    try {
      const repo = uniqueRepo('unpack');
      const ref = `${reg.anon}/${repo}:1`;
      const name = parseReference(ref).toString();
      const old = await makeRandomImage(src.store, name, [1000]);
      await push(src.store, ref);
      // the name already exists in the destination (pulled without unpacking)
      const first = await runKiln(['--root', dest.root, 'pull', '--no-unpack', ref]);
      expect(first.code).toBe(0);
      expect(first.stdout.trim()).toBe(old.descriptor.digest);

      const bad = await makeRandomImage(src.store, name, [300_000, 2000]);
      await push(src.store, ref);
      const r = await runKiln(['--root', dest.root, 'pull', ref]);
      expect(r.code).toBe(1);
      const last = r.stderr.trim().split('\n').at(-1)!;
      expect(last).toMatch(/^kiln: /);
      expect(last).toContain(`${repo}:1: layers cannot be unpacked, image not kept: `);
      expect(r.stdout).toBe('');
      expect(await dest.store.resolve(name)).toMatchObject({ digest: old.descriptor.digest });
      expect(bad.descriptor.digest).not.toBe(old.descriptor.digest);
      // no snapshot (complete or not) and nothing left in tmp/
      expect((await readdir(join(dest.root, 's'))).length).toBe(0);
      expect((await readdir(join(dest.root, 'tmp'))).filter((n) => n !== 'partial')).toEqual([]);
      const fsck = await runKiln(['--root', dest.root, 'fsck']);
      expect(fsck.stdout).toMatch(/: ok\n$/);
      expect(fsck.code).toBe(0);

      // a name the store did not have is not created
      const fresh = await tempStore();
      try {
        const again = await runKiln(['--root', fresh.root, 'pull', ref]);
        expect(again.code).toBe(1);
        expect(await fresh.store.listRefs()).toEqual([]);
      } finally {
        await fresh.dispose();
      }
    } finally {
      await src.dispose();
      await dest.dispose();
    }
  });
});
