import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importMounts } from '../../src/cache/mounts.js';
import { isKilnError } from '../../src/errors/index.js';
import { writeLayer } from '../../src/layer/write-layer.js';
import type { LayerEntry } from '../../src/layer/types.js';
import { cacheDirName, cacheMountsRoot, isCacheDirName } from '../../src/sandbox/cache-mounts.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * An imported cache artifact (`--cache-from`, from a directory or a registry anyone may write)
 * names the cache-mount directories it restores. A name of "." made the whole `cache-mounts`
 * folder the artifact's tree, where a symlink named like a cache (the names are predictable from
 * the mount's id) then became the bind source of every RUN using that cache: the RUN read and
 * wrote the host directory it pointed at, as root.
 */
let b: Bench;
let victim: string;
beforeAll(async () => {
  b = await bench();
  victim = path.join(b.dir, 'victim');
  await mkdir(victim);
  await writeFile(path.join(victim, 'secret.txt'), 'host secret\n');
});
afterAll(async () => {
  await b.cleanup();
});

const link = (name: string, target: string): LayerEntry => ({ path: name, type: 'symlink', mode: 0o777, uid: 0, gid: 0, mtime: 0, linkname: target });

function expectVictimUntouched(): void {
  expect(readdirSync(victim)).toEqual(['secret.txt']);
}

describe('restoring cache mounts from an imported artifact', () => {
  it('takes only names of a cache directory\'s own shape', () => {
    expect(isCacheDirName(cacheDirName('/root/.cache/go-build'))).toBe(true);
    expect(isCacheDirName(`${cacheDirName('x')}~2`)).toBe(true);
    for (const bad of ['.', '..', 'x.lock', `${cacheDirName('x')}.lock`, `${cacheDirName('x')}.new-1-2`, 'a/b', '', 'plain']) expect(isCacheDirName(bad), bad).toBe(false);
  });

  it('a "." or ".." entry restores nothing: no link lands where a cache is looked for', async () => {
    const store = await b.store();
    const name = cacheDirName('evil');
    const layer = await writeLayer([link(name, victim)], store, { compression: 'gzip' });
    const ref = { mediaType: layer.mediaType, digest: layer.digest, size: layer.size, diffID: layer.diffID };
    const made = await importMounts(store, [{ dir: '.', layer: ref }, { dir: '..', layer: ref }, { dir: `${name}.lock`, layer: ref }], async () => undefined);
    expect(made).toEqual([]);
    expect(existsSync(path.join(cacheMountsRoot(b.root), name))).toBe(false);
    expectVictimUntouched();
  });

  it('a cache directory that is a symlink is refused by the RUN, never mounted', async () => {
    const root = cacheMountsRoot(b.root);
    await mkdir(root, { recursive: true });
    const name = cacheDirName('planted');
    await symlink(victim, path.join(root, name));
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN --mount=type=cache,id=planted,target=/c sh -c 'ls /c; echo pwned > /c/pwned'\n` });
    const err = await b.build(ctx).catch((e: unknown) => e);
    expect(isKilnError(err) && err.message).toMatch(/is not a directory \(a symlink\)/);
    expectVictimUntouched();
    expect(await readFile(path.join(victim, 'secret.txt'), 'utf8')).toBe('host secret\n');
    expect(lstatSync(path.join(root, name)).isSymbolicLink()).toBe(true);
  });
});
