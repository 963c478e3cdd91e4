import { execFileSync } from 'node:child_process';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { hostPlatform } from '../../src/image/platform.js';
import type { Index } from '../../src/image/types.js';
import { REF_ANNOTATION } from '../../src/store/store.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { expectValidOci, expectValidStoredImage } from '../helpers/oci-validate.js';
import { tempStore } from '../helpers/temp-dir.js';

async function drain(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('refs and images', () => {
  let t: Awaited<ReturnType<typeof tempStore>>;
  beforeAll(async () => (t = await tempStore()));
  afterAll(async () => t.cleanup());

  it('builds the busybox fixture deterministically and tags it', async () => {
    const desc = await makeBusyboxImage(t.store, 'localhost/busybox:latest');
    const again = await makeBusyboxImage(t.store, 'localhost/busybox:again');
    expect(again.digest).toBe(desc.digest);
    expect(desc.mediaType).toBe(MediaType.OCI_MANIFEST);
    expect(await t.store.resolve('localhost/busybox:latest')).toEqual(desc);
    await expectValidStoredImage(t.store, desc.digest);
  });

  it('storing an image again (a cached rebuild) rewrites neither its blobs nor index.json, and still repairs a damaged document', async () => {
    const desc = (await t.store.resolve('localhost/busybox:latest'))!;
    const img = await t.store.getImage(desc.digest);
    const before = { index: await stat(join(t.root, 'index.json')), manifest: await stat(t.store.blobPath(desc.digest)), config: await stat(t.store.blobPath(img.configDescriptor.digest)) };
    const again = await t.store.putImage({ config: img.config, layers: [...img.layers] }, { ref: 'localhost/busybox:latest' });
    expect(again.descriptor.digest).toBe(desc.digest);
    const after = { index: await stat(join(t.root, 'index.json')), manifest: await stat(t.store.blobPath(desc.digest)), config: await stat(t.store.blobPath(img.configDescriptor.digest)) };
    for (const k of ['index', 'manifest', 'config'] as const) {
      expect([after[k].ino, after[k].mtimeMs], k).toEqual([before[k].ino, before[k].mtimeMs]);
    }
    // a config blob whose bytes were damaged in place is written again, not trusted by its name
    const configPath = t.store.blobPath(img.configDescriptor.digest);
    const good = await readFile(configPath);
    await writeFile(configPath, Buffer.concat([good.subarray(0, good.length - 1), Buffer.from(' ')]));
    await t.store.putJSON(img.config, img.configDescriptor.mediaType);
    expect(sha256(await readFile(configPath))).toBe(img.configDescriptor.digest);
    // a new tag on the same image does rewrite index.json
    await t.store.setRef('localhost/busybox:retag', desc);
    expect((await stat(join(t.root, 'index.json'))).ino).not.toBe(before.index.ino);
    await t.store.removeRef('localhost/busybox:retag');
  });

  it('getImage gives manifest, config and layers with both digests', async () => {
    const img = await t.store.getImage('localhost/busybox:latest');
    expect(img.config.os).toBe('linux');
    expect(img.config.architecture).toBe(hostPlatform().architecture);
    expect(img.config.config?.Cmd).toEqual(['sh']);
    expect(img.config.config?.Env).toEqual(['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
    expect(img.layers).toHaveLength(1);
    const layer = img.layers[0]!;
    expect(layer.mediaType).toBe(MediaType.OCI_LAYER_GZIP);
    expect(layer.diffID).toBe(img.config.rootfs.diff_ids[0]);
    expect(sha256(await drain(layer.open()))).toBe(layer.digest);
    const tar = await drain(layer.openUncompressed());
    expect(sha256(tar)).toBe(layer.diffID);
    expect(tar.includes(Buffer.from('bin/busybox'))).toBe(true);
    // by digest and by short prefix too
    expect((await t.store.getImage(img.descriptor.digest)).descriptor.digest).toBe(img.descriptor.digest);
    expect((await t.store.getImage(img.descriptor.digest.slice(7, 19))).descriptor.digest).toBe(img.descriptor.digest);
    expectValidOci(img.manifest, 'manifest');
    expectValidOci(img.config, 'config');
    for (const l of img.manifest.layers) expectValidOci(l, 'descriptor');
  });

  it('keeps refs as ref.name annotations in a valid index.json, sorted, replacing old targets', async () => {
    const desc = (await t.store.resolve('localhost/busybox:latest'))!;
    await t.store.setRef('docker.io/library/busybox:latest', desc);
    await t.store.setRef('localhost/other:1', desc);
    expect(await t.store.removeRef('localhost/other:1')).toBe(true);
    expect(await t.store.removeRef('localhost/other:1')).toBe(false);
    const index = JSON.parse(await readFile(join(t.root, 'index.json'), 'utf8')) as Index;
    expectValidOci(index, 'index');
    expect(index.manifests.map((m) => m.annotations?.[REF_ANNOTATION])).toEqual(['docker.io/library/busybox:latest', 'localhost/busybox:again', 'localhost/busybox:latest']);
    expect((await t.store.listRefs()).map((r) => r.ref)).toEqual(['docker.io/library/busybox:latest', 'localhost/busybox:again', 'localhost/busybox:latest']);
    expect(await t.store.resolve('nope:latest')).toBeUndefined();
  });

  it('refuses to tag a manifest that is not in the store', async () => {
    const err = await t.store.setRef('x/y:z', { mediaType: MediaType.OCI_MANIFEST, digest: sha256('absent'), size: 1 }).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('NOT_FOUND');
  });

  it('skopeo reads the store as an OCI layout by full reference', () => {
    const out = execFileSync('skopeo', ['inspect', '--raw', `oci:${t.root}:docker.io/library/busybox:latest`], { encoding: 'utf8' });
    const m = JSON.parse(out) as { layers: Array<{ digest: string }> };
    expect(m.layers).toHaveLength(1);
    const cfg = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${t.root}:localhost/busybox:latest`], { encoding: 'utf8' })) as { config: { Cmd: string[] } };
    expect(cfg.config.Cmd).toEqual(['sh']);
  });

  it('umoci unpacks the stored image into a runnable rootfs layout', async () => {
    const { tempDir } = await import('../helpers/temp-dir.js');
    const d = await tempDir();
    try {
      // umoci wants a plain tag; give the image one in a copy of the layout made by skopeo
      execFileSync('skopeo', ['copy', '--quiet', `oci:${t.root}:localhost/busybox:latest`, `oci:${d.path}/layout:latest`]);
      execFileSync('umoci', ['unpack', '--rootless', '--image', `${d.path}/layout:latest`, `${d.path}/bundle`], { stdio: 'pipe' });
      const passwd = await readFile(join(d.path, 'bundle', 'rootfs', 'etc', 'passwd'), 'utf8');
      expect(passwd).toContain('app:x:1000:1000:app:/home/app:/bin/sh');
    } finally {
      await d.cleanup();
    }
  });

  it('resolves an index to the host platform manifest', async () => {
    const img = await t.store.getImage('localhost/busybox:latest');
    const index = await t.store.putJSON(
      {
        schemaVersion: 2,
        mediaType: MediaType.OCI_INDEX,
        manifests: [
          { ...img.descriptor, platform: { os: 'linux', architecture: 's390x' } },
          { ...img.descriptor, platform: hostPlatform() },
        ],
      },
      MediaType.OCI_INDEX,
    );
    await t.store.setRef('localhost/multi:latest', index);
    expect((await t.store.getImage('localhost/multi:latest')).descriptor.digest).toBe(img.descriptor.digest);
    const err = await t.store.getImage('localhost/multi:latest', { platform: { os: 'linux', architecture: 'riscv64' } }).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('NOT_FOUND');
    expect((err as Error).message).toContain('linux/s390x');
  });

  it('keeps untagged images in index.json without a name', async () => {
    const img = await t.store.getImage('localhost/busybox:latest');
    const cfg = { ...img.config, config: { ...img.config.config, Labels: { x: '1' } } };
    const other = await t.store.putImage({ config: cfg, layers: [...img.layers] });
    await t.store.keepUntagged(other.descriptor);
    const entries = await t.store.listEntries();
    expect(entries.filter((e) => e.ref === undefined).map((e) => e.descriptor.digest)).toEqual([other.descriptor.digest]);
    await t.store.setRef('localhost/labelled:1', other.descriptor);
    expect((await t.store.listEntries()).filter((e) => e.ref === undefined)).toEqual([]);
    expect(await t.store.removeDigest(other.descriptor.digest)).toEqual(['localhost/labelled:1']);
  });

  it('putImage refuses layers missing from the store or disagreeing with the config', async () => {
    const img = await t.store.getImage('localhost/busybox:latest');
    const e1 = await t.store.putImage({ config: img.config, layers: [{ descriptor: { ...img.layers[0]!.descriptor, digest: sha256('x') }, diffID: img.layers[0]!.diffID }] }).catch((e: unknown) => e);
    expect(isKilnError(e1) && e1.code).toBe('NOT_FOUND');
    const e2 = await t.store.putImage({ config: img.config, layers: [] }).catch((e: unknown) => e);
    expect(isKilnError(e2) && e2.code).toBe('INTERNAL');
  });

  it('writes Docker schema-2 manifests when asked, with the same config bytes', async () => {
    const img = await t.store.getImage('localhost/busybox:latest');
    const d = await t.store.putImage({ config: img.config, layers: [...img.layers] }, { format: 'docker', ref: 'localhost/dockerfmt:1' });
    expect(d.manifest.mediaType).toBe(MediaType.DOCKER_MANIFEST);
    expect(d.manifest.config.mediaType).toBe(MediaType.DOCKER_CONFIG);
    expect(d.manifest.config.digest).toBe(img.configDescriptor.digest);
    expect(d.manifest.layers[0]!.mediaType).toBe(MediaType.DOCKER_LAYER_GZIP);
    const back = await t.store.getImage('localhost/dockerfmt:1');
    expect(back.layers.map((l) => l.diffID)).toEqual(img.layers.map((l) => l.diffID));
    // (skopeo 1.9's oci: transport only finds OCI media types in index.json, so it is not asked here)
  });
});
