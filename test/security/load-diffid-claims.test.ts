import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadArchive } from '../../src/export/load.js';
import type { Digest } from '../../src/image/digest.js';
import { Store } from '../../src/store/store.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * An image config says which diffID each layer has; for a loaded OCI archive
 * (or a pull) that is a claim, recorded as such. A later `kiln load` of a
 * genuine docker archive whose layer is a plain tar may reuse a compressed
 * blob of the same diffID the store already holds — but only one kiln hashed
 * itself: a hostile archive claiming the genuine layer's diffID for its own
 * blob must not make the genuine image point at the hostile content.
 */
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let dir: Awaited<ReturnType<typeof tempDir>>;
beforeAll(async () => {
  dir = await tempDir('kiln-diffid-claims-');
});
afterAll(async () => {
  await dir.cleanup();
});

/** A layer tar holding one file, made by GNU tar (deterministic: fixed owner and time). */
async function layerTar(name: string, content: string): Promise<Buffer> {
  const src = join(dir.path, `src-${name}`);
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'hello.txt'), content);
  return execFileSync('tar', ['-C', src, '--owner=0', '--group=0', '--mtime=@0', '-cf', '-', 'hello.txt']);
}

async function packDir(from: string, to: string): Promise<void> {
  execFileSync('tar', ['-C', from, '-cf', to, '.']);
}

describe('kiln load: a config claiming another layer\'s diffID', () => {
  it('does not make a genuine docker archive loaded later point at the hostile blob', async () => {
    const legit = await layerTar('legit', 'legit content\n');
    const X = sha(legit);
    const evil = gzipSync(await layerTar('evil', 'EVIL content\n'));

    // the hostile OCI archive: its config claims diffID X for the evil blob
    const h = join(dir.path, 'hostile');
    await mkdir(join(h, 'blobs', 'sha256'), { recursive: true });
    const put = async (b: Buffer): Promise<string> => {
      const d = sha(b);
      await writeFile(join(h, 'blobs', 'sha256', d.slice(7)), b);
      return d;
    };
    const cfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [X] } }));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: await put(cfg), size: cfg.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: await put(evil), size: evil.length }],
    }));
    const md = await put(manifest);
    await writeFile(join(h, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await writeFile(join(h, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.length, annotations: { 'io.containerd.image.name': 'docker.io/hostile/poison:1' } }] }));
    await packDir(h, join(dir.path, 'hostile.tar'));

    // the genuine docker-save archive: its layer is the plain tar with diffID X
    const g = join(dir.path, 'genuine');
    await mkdir(join(g, 'layer'), { recursive: true });
    await writeFile(join(g, 'layer', 'layer.tar'), legit);
    const gcfg = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [X] } }));
    const gcfgName = `${sha(gcfg).slice(7)}.json`;
    await writeFile(join(g, gcfgName), gcfg);
    await writeFile(join(g, 'manifest.json'), JSON.stringify([{ Config: gcfgName, RepoTags: ['library/legit:1'], Layers: ['layer/layer.tar'] }]));
    await packDir(g, join(dir.path, 'genuine.tar'));

    const store = await Store.open(join(dir.path, 'store'));
    try {
      await loadArchive(store, join(dir.path, 'hostile.tar'));
      const [loaded] = await loadArchive(store, join(dir.path, 'genuine.tar'));
      const image = await store.imageFromDescriptor(loaded!.descriptor);
      const layer = image.layers[0]!;
      expect(layer.digest).not.toBe(sha(evil));
      const chunks: Buffer[] = [];
      for await (const c of store.openBlob(layer.digest)) chunks.push(c as Buffer);
      const bytes = Buffer.concat(chunks);
      const tar = layer.mediaType.endsWith('gzip') ? gunzipSync(bytes) : bytes;
      expect(sha(tar)).toBe(X);
      expect(tar.includes(Buffer.from('legit content'))).toBe(true);
      // the genuine layer's pair is recorded as proven; the claim stays a claim
      expect((await store.blobsForDiffID(X as Digest, { verifiedOnly: true })).map((d) => d.digest)).not.toContain(sha(evil));
    } finally {
      await store.close();
    }
  });
});
