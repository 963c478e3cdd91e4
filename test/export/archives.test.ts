import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { loadArchive } from '../../src/export/load.js';
import { saveDockerArchive } from '../../src/export/docker-archive.js';
import { saveOciArchive } from '../../src/export/oci-archive.js';
import type { Descriptor } from '../../src/image/types.js';
import { Store } from '../../src/store/store.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { expectValidOci, expectValidStore, expectValidStoredImage } from '../helpers/oci-validate.js';
import { tempDir } from '../helpers/temp-dir.js';

const REF = 'localhost/busybox:latest';
let dir: Awaited<ReturnType<typeof tempDir>>;
let store: Store;
let busybox: Descriptor;

function skopeoJSON(args: string[]): Record<string, unknown> {
  return JSON.parse(execFileSync('skopeo', args, { encoding: 'utf8' })) as Record<string, unknown>;
}

async function freshStore(name: string): Promise<Store> {
  return Store.open(join(dir.path, name));
}

beforeAll(async () => {
  dir = await tempDir('kiln-export-');
  store = await freshStore('main');
  busybox = await makeBusyboxImage(store, REF);
});
afterAll(async () => {
  await store.close();
  await dir.cleanup();
});

describe('save', () => {
  it('--format oci is read by skopeo oci-archive: and unpacked by umoci', async () => {
    const file = join(dir.path, 'bb-oci.tar');
    await saveOciArchive(store, [{ ref: REF, descriptor: busybox }], file);
    const raw = skopeoJSON(['inspect', '--raw', `oci-archive:${file}`]);
    expectValidOci(raw, 'manifest');
    const img = await store.getImage(REF);
    expect((raw['layers'] as Array<{ digest: string }>).map((l) => l.digest)).toEqual(img.layers.map((l) => l.digest));
    expect(skopeoJSON(['inspect', `oci-archive:${file}:latest`])['Digest']).toBe(busybox.digest);

    const unpack = join(dir.path, 'umoci');
    execFileSync('mkdir', ['-p', `${unpack}/layout`]);
    execFileSync('tar', ['-xf', file, '-C', `${unpack}/layout`]);
    expectValidOci(await readFile(join(unpack, 'layout', 'index.json')), 'index');
    execFileSync('umoci', ['unpack', '--rootless', '--image', `${unpack}/layout:latest`, `${unpack}/bundle`], { stdio: 'pipe' });
    expect(await readFile(join(unpack, 'bundle', 'rootfs', 'etc', 'group'), 'utf8')).toContain('app:x:1000:');
    expect((await readdir(join(unpack, 'bundle', 'rootfs', 'bin'))).length).toBeGreaterThan(100);
  });

  it('--format docker is read by skopeo docker-archive:', async () => {
    const file = join(dir.path, 'bb-docker.tar');
    await saveDockerArchive(store, [{ ref: REF, descriptor: busybox }], file);
    const out = skopeoJSON(['inspect', `docker-archive:${file}`]);
    const img = await store.getImage(REF);
    // docker-archive layers are uncompressed: skopeo reports their diffIDs
    expect(out['Layers']).toEqual(img.layers.map((l) => l.diffID));
    const cfg = skopeoJSON(['inspect', '--config', `docker-archive:${file}`]);
    expect((cfg['config'] as { Cmd: string[] }).Cmd).toEqual(['sh']);
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', file, 'manifest.json'], { encoding: 'utf8' })) as Array<{ RepoTags: string[] }>;
    expect(manifest[0]!.RepoTags).toEqual(['localhost/busybox:latest']);
  });

  it('a failed save leaves no file behind', async () => {
    const file = join(dir.path, 'broken.tar');
    const bogus: Descriptor = { ...busybox, digest: `sha256:${'0'.repeat(64)}` as Descriptor['digest'] };
    await expect(saveOciArchive(store, [{ ref: 'x/y:z', descriptor: bogus }], file)).rejects.toThrow();
    expect((await readdir(dir.path)).filter((n) => n.includes('broken'))).toEqual([]);
  });
});

describe('load', () => {
  it('archives written by skopeo (oci-archive and docker-archive) load with identical layers', async () => {
    const ociFile = join(dir.path, 'skopeo-oci.tar');
    const dockerFile = join(dir.path, 'skopeo-docker.tar');
    execFileSync('skopeo', ['copy', '--quiet', `oci:${store.root}:${REF}`, `oci-archive:${ociFile}:localhost/busybox:latest`]);
    execFileSync('skopeo', ['copy', '--quiet', `oci:${store.root}:${REF}`, `docker-archive:${dockerFile}:localhost/busybox:latest`]);
    const a = await freshStore('load-oci');
    const b = await freshStore('load-docker');
    try {
      const la = await loadArchive(a, ociFile);
      const lb = await loadArchive(b, dockerFile);
      expect(la.map((x) => x.refs)).toEqual([['localhost/busybox:latest']]);
      expect(lb.map((x) => x.refs)).toEqual([['localhost/busybox:latest']]);
      const ia = await a.getImage('localhost/busybox:latest');
      const ib = await b.getImage('localhost/busybox:latest');
      const orig = await store.getImage(REF);
      expect(ia.layers.map((l) => l.digest)).toEqual(orig.layers.map((l) => l.digest));
      expect(ia.layers.map((l) => l.diffID)).toEqual(orig.layers.map((l) => l.diffID));
      expect(ib.layers.map((l) => l.diffID)).toEqual(orig.layers.map((l) => l.diffID));
      expect(ib.configDescriptor.digest).toBe(orig.configDescriptor.digest);
      await expectValidStoredImage(b, ib.descriptor.digest);
      // a docker-archive layer whose compressed form is already present maps back to it
      await loadArchive(a, dockerFile);
      const again = await a.getImage('localhost/busybox:latest');
      expect(again.layers.map((l) => l.digest)).toEqual(orig.layers.map((l) => l.digest));
      expect(again.descriptor.digest).toBe(orig.descriptor.digest);
      for (const s of [a, b, store]) await expectValidStore(s);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('loads gzip- and zstd-compressed archives, and untagged ones as unnamed images', async () => {
    const plain = join(dir.path, 'untagged-oci.tar');
    await saveOciArchive(store, [{ descriptor: busybox }], plain);
    const gz = `${plain}.gz`;
    await pipeline(createReadStream(plain), createGzip(), createWriteStream(gz));
    const s = await freshStore('load-gz');
    try {
      const loaded = await loadArchive(s, gz);
      expect(loaded).toEqual([{ refs: [], descriptor: { mediaType: busybox.mediaType, digest: busybox.digest, size: busybox.size } }]);
      expect((await s.listEntries()).map((e) => [e.ref, e.descriptor.digest])).toEqual([[undefined, busybox.digest]]);
      expect((await s.getImage(busybox.digest)).config.config?.Cmd).toEqual(['sh']);
      // and zstd
      const zst = `${plain}.zst`;
      execFileSync('zstd', ['-q', '-o', zst, plain]);
      const z = await freshStore('load-zstd');
      try {
        expect((await loadArchive(z, zst))[0]!.descriptor.digest).toBe(busybox.digest);
      } finally {
        await z.close();
      }
    } finally {
      await s.close();
    }
  });

  it('round-trips kiln save --format docker back to the same manifest digest', async () => {
    const file = join(dir.path, 'rt-docker.tar');
    await saveDockerArchive(store, [{ ref: 'docker.io/library/busybox:rt', descriptor: busybox }], file);
    const names: string[] = [];
    const loaded = await loadArchive(store, file, { normaliseName: (n) => (names.push(n), n.includes('/') ? n : `docker.io/library/${n}`) });
    expect(names).toEqual(['busybox:rt']);
    expect(loaded[0]!.refs).toEqual(['docker.io/library/busybox:rt']);
    expect(loaded[0]!.descriptor.digest).toBe(busybox.digest);
  });

  it('refuses files that are not image archives, and corrupted blobs', async () => {
    const s = await freshStore('load-bad');
    try {
      const notTar = join(dir.path, 'not-an-archive');
      execFileSync('sh', ['-c', `echo hello > ${notTar}`]);
      const e1 = await loadArchive(s, notTar).catch((e: unknown) => e);
      expect(isKilnError(e1) && e1.code).toBe('ARCHIVE');

      // flip a byte inside the config blob of an OCI archive
      const good = join(dir.path, 'bb-oci.tar');
      const bytes = await readFile(good);
      const img = await store.getImage(REF);
      const cfg = await store.readBlob(img.configDescriptor.digest);
      const at = bytes.indexOf(cfg);
      expect(at).toBeGreaterThan(0);
      bytes[at + 2] = bytes[at + 2]! ^ 1;
      const bad = join(dir.path, 'corrupt.tar');
      const { writeFile } = await import('node:fs/promises');
      await writeFile(bad, bytes);
      const e2 = await loadArchive(s, bad).catch((e: unknown) => e);
      expect(isKilnError(e2) && e2.code).toBe('DIGEST_MISMATCH');
      expect(await s.hasBlob(img.configDescriptor.digest)).toBe(false);
      const e3 = await loadArchive(s, join(dir.path, 'missing.tar')).catch((e: unknown) => e);
      expect(isKilnError(e3) && e3.code).toBe('NOT_FOUND');
    } finally {
      await s.close();
    }
  });
});
