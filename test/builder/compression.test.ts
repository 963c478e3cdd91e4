import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bench, BASE, executedSteps, cachedSteps, type Bench } from './helpers.js';
import { busyboxEntries } from '../helpers/busybox.js';
import { expectValidOci } from '../helpers/oci-validate.js';
import { writeLayer, gzipStream, openUncompressed, LayerRecompressor, recompressBlob } from '../../src/layer/index.js';
import type { LayerEntry } from '../../src/layer/types.js';
import { Readable } from 'node:stream';
import { emptyConfig, withEnv, DEFAULT_PATH, withLayer, patchContainerConfig, withCreated } from '../../src/image/config.js';
import { hostPlatform } from '../../src/image/platform.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Manifest } from '../../src/image/types.js';
import type { Store } from '../../src/store/store.js';
import { parseOutputSpec } from '../../src/builder/options.js';
import { parseCacheTo, parseCacheFrom } from '../../src/cache/spec.js';
import type { CacheDocument } from '../../src/cache/document.js';
import { push } from '../../src/registry/push.js';

/**
 * Compression follows the request whatever the cache holds (issue 10, item 11)
 * and an OCI manifest never names a layer with a Docker media type (item 12).
 * BuildKit: `compression`, `compression-level` and `force-compression` are
 * image-exporter attributes; base layers are re-compressed only with
 * force-compression; OCI manifests get OCI layer media types
 * (ConvertAllLayerMediaTypes). kiln goes one step further than BuildKit for
 * the build's own cached layers: they follow the request even without force.
 */

const EPOCH = 1704067200;
const ZSTD_BASE = 'localhost/busybox-zstd:latest';
const DOCKER_BASE = 'localhost/busybox-docker:latest';

let b: Bench;
let fresh: Bench;

/** The busybox base again, its layer in zstd, or as a Docker schema-2 image. */
async function altBase(store: Store, ref: string, how: 'zstd' | 'docker'): Promise<void> {
  const layer = await writeLayer(busyboxEntries(), store, { compression: how === 'zstd' ? 'zstd' : 'gzip' });
  let config = emptyConfig(hostPlatform());
  config = withEnv(config, { PATH: DEFAULT_PATH });
  config = patchContainerConfig(config, { Cmd: ['sh'] });
  config = withCreated(config, '2024-01-01T00:00:00Z');
  config = withLayer(config, layer.diffID, { created: '2024-01-01T00:00:00Z', created_by: 'kiln test fixture' });
  await store.putImage({ config, layers: [layer] }, { ref, ...(how === 'docker' ? { format: 'docker' as const } : {}) });
}

const DOCKERFILE = (base: string) => `FROM ${base}
RUN echo ran > /ran.txt && head -c 65536 /dev/zero > /zeros
COPY app.txt /app.txt
WORKDIR /srv/app
`;

/** The image manifest for this host (a pushed build is an index: the image plus its provenance attestation). */
async function manifestOf(store: Store, ref: string): Promise<Manifest> {
  const img = await store.getImage(ref);
  return img.manifest;
}

/** Every layer blob of the image decompresses to the diffID its config lists. */
async function expectLayersMatchDiffIDs(store: Store, ref: string): Promise<void> {
  const img = await store.getImage(ref);
  for (const [i, l] of img.layers.entries()) {
    const h = createHash('sha256');
    for await (const chunk of openUncompressed(store.openBlob(l.digest, { verify: true }), l.mediaType)) h.update(chunk as Buffer);
    expect(`sha256:${h.digest('hex')}`, `layer ${i}`).toBe(img.config.rootfs.diff_ids[i]);
  }
}

const mediaTypes = (m: Manifest) => m.layers.map((l) => l.mediaType);

beforeAll(async () => {
  b = await bench();
  fresh = await bench();
  await altBase(await b.store(), ZSTD_BASE, 'zstd');
  await altBase(await b.store(), DOCKER_BASE, 'docker');
});
afterAll(async () => {
  await b?.cleanup();
  await fresh?.cleanup();
});

describe('compression follows the request, cache or not', () => {
  it('a build after a zstd build writes gzip layers (default, --compression gzip) without running a step again, and matches a fresh gzip build', async () => {
    const ctx = await b.context({ 'app.txt': 'app\n', Dockerfile: DOCKERFILE(BASE) });
    const z = await b.build(ctx, { tags: ['localhost/comp/a:zstd'], compression: 'zstd', sourceDateEpoch: EPOCH });
    expect(executedSteps(z.events)).toHaveLength(3);
    const store = await b.store();
    // the base keeps its gzip layer (not forced); the three built layers are zstd
    expect(mediaTypes(await manifestOf(store, 'localhost/comp/a:zstd'))).toEqual([MediaType.OCI_LAYER_GZIP, MediaType.OCI_LAYER_ZSTD, MediaType.OCI_LAYER_ZSTD, MediaType.OCI_LAYER_ZSTD]);
    await expectLayersMatchDiffIDs(store, 'localhost/comp/a:zstd');

    const g = await b.build(ctx, { tags: ['localhost/comp/a:gzip'], sourceDateEpoch: EPOCH });
    expect(executedSteps(g.events)).toEqual([]);
    expect(cachedSteps(g.events)).toHaveLength(3);
    const gm = await manifestOf(store, 'localhost/comp/a:gzip');
    expect(mediaTypes(gm)).toEqual(Array(4).fill(MediaType.OCI_LAYER_GZIP));
    await expectLayersMatchDiffIDs(store, 'localhost/comp/a:gzip');
    expect(g.result.config.rootfs.diff_ids).toEqual(z.result.config.rootfs.diff_ids);

    // the re-compressed blobs are the ones a build that never saw zstd writes: same manifest digest
    const f = await fresh.build(await fresh.context({ 'app.txt': 'app\n', Dockerfile: DOCKERFILE(BASE) }), { tags: ['localhost/comp/a:gzip'], sourceDateEpoch: EPOCH });
    expect(f.result.manifestDigest).toBe(g.result.manifestDigest);

    // the step records keep both blobs: explicit gzip re-uses them, and zstd still finds its own
    const again = await b.build(ctx, { tags: ['localhost/comp/a:gzip2'], compression: 'gzip', sourceDateEpoch: EPOCH });
    expect(again.result.manifestDigest).toBe(g.result.manifestDigest);
    const z2 = await b.build(ctx, { tags: ['localhost/comp/a:zstd2'], compression: 'zstd', sourceDateEpoch: EPOCH });
    expect(z2.result.manifestDigest).toBe(z.result.manifestDigest);
    const records = await recordsWithVariants(b.root);
    expect(records.length).toBeGreaterThanOrEqual(3);
    for (const r of records) {
      const kinds = [r.layer!.mediaType, ...r.variants!.map((v) => v.mediaType)].sort();
      expect(kinds).toEqual([MediaType.OCI_LAYER_GZIP, MediaType.OCI_LAYER_ZSTD].sort());
    }
  });

  it('-o type=image,compression=gzip,force-compression=true re-compresses the zstd base too; without force the base keeps zstd (as BuildKit)', async () => {
    const ctx = await b.context({ 'app.txt': 'forced\n', Dockerfile: DOCKERFILE(ZSTD_BASE) });
    await b.build(ctx, { tags: ['localhost/comp/b:zstd'], compression: 'zstd' });
    const store = await b.store();
    expect(mediaTypes(await manifestOf(store, 'localhost/comp/b:zstd'))).toEqual(Array(4).fill(MediaType.OCI_LAYER_ZSTD));

    await b.build(ctx, { tags: ['localhost/comp/b:gzip'], outputs: [parseOutputSpec('type=image,compression=gzip')] });
    expect(mediaTypes(await manifestOf(store, 'localhost/comp/b:gzip'))).toEqual([MediaType.OCI_LAYER_ZSTD, ...Array(3).fill(MediaType.OCI_LAYER_GZIP)]);

    const forced = await b.build(ctx, { tags: ['localhost/comp/b:forced'], outputs: [parseOutputSpec('type=image,compression=gzip,force-compression=true')] });
    expect(executedSteps(forced.events)).toEqual([]);
    expect(mediaTypes(await manifestOf(store, 'localhost/comp/b:forced'))).toEqual(Array(4).fill(MediaType.OCI_LAYER_GZIP));
    await expectLayersMatchDiffIDs(store, 'localhost/comp/b:forced');
    // the base image itself is untouched
    expect(mediaTypes(await manifestOf(store, ZSTD_BASE))).toEqual([MediaType.OCI_LAYER_ZSTD]);
  });

  it('compression-level is honoured: a gzip layer at level 9 is exactly gzip -9 of its tar, in kiln\'s block format', async () => {
    const ctx = await b.context({ 'app.txt': 'level nine\n'.repeat(2000), Dockerfile: `FROM ${BASE}\nCOPY app.txt /level.txt\n` });
    await b.build(ctx, { tags: ['localhost/comp/c:9'], outputs: [parseOutputSpec('type=image,compression=gzip,compression-level=9')] });
    const store = await b.store();
    const img = await store.getImage('localhost/comp/c:9');
    const top = img.layers[img.layers.length - 1]!;
    const tar: Buffer[] = [];
    for await (const c of top.openUncompressed()) tar.push(c as Buffer);
    const level9: Buffer[] = [];
    for await (const c of gzipStream([Buffer.concat(tar)], 9)) level9.push(c);
    const level1: Buffer[] = [];
    for await (const c of gzipStream([Buffer.concat(tar)], 1)) level1.push(c);
    const blob = await store.readBlob(top.digest);
    expect(blob.equals(Buffer.concat(level9))).toBe(true);
    expect(blob.equals(Buffer.concat(level1))).toBe(false);
  });

  it('several outputs each get their own compression from the same cache: -t gzip, a named zstd image, a zstd OCI layout', async () => {
    const ctx = await b.context({ 'app.txt': 'multi\n', Dockerfile: DOCKERFILE(BASE) });
    const dest = path.join(b.dir, 'multi-oci');
    await b.build(ctx, {
      tags: ['localhost/comp/d:main'],
      outputs: [parseOutputSpec('type=image,name=localhost/comp/d:zstd,compression=zstd'), parseOutputSpec(`type=oci,dest=${dest},tar=false,compression=zstd,force-compression=true`)],
    });
    const store = await b.store();
    expect(mediaTypes(await manifestOf(store, 'localhost/comp/d:main'))).toEqual(Array(4).fill(MediaType.OCI_LAYER_GZIP));
    expect(mediaTypes(await manifestOf(store, 'localhost/comp/d:zstd'))).toEqual([MediaType.OCI_LAYER_GZIP, ...Array(3).fill(MediaType.OCI_LAYER_ZSTD)]);
    const index = JSON.parse(await readFile(path.join(dest, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const m = JSON.parse(await readFile(path.join(dest, 'blobs/sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as Manifest;
    expect(mediaTypes(m)).toEqual(Array(4).fill(MediaType.OCI_LAYER_ZSTD));
    // all three share one config: only the layer blobs differ
    expect(m.config.digest).toBe((await manifestOf(store, 'localhost/comp/d:main')).config.digest);
  });

  it('--cache-to after a zstd build exports gzip layers when gzip is requested, each decompressing to its record\'s diffID', async () => {
    const ctx = await b.context({ 'app.txt': 'cache-to\n', Dockerfile: DOCKERFILE(BASE) });
    await b.build(ctx, { tags: ['localhost/comp/e:zstd'], compression: 'zstd' });
    const dest = path.join(b.dir, 'cache-gzip');
    const built = await b.build(ctx, { tags: ['localhost/comp/e:gzip'], cacheTo: [{ type: 'local', dest, mode: 'max', cacheMounts: false }] });
    expect(built.events.filter((e) => e.type === 'warning' && e.message.includes('cache export'))).toEqual([]);
    const doc = await readLocalCache(dest);
    const layered = doc.records.filter((r) => r.layer);
    expect(layered).toHaveLength(3);
    for (const r of layered) {
      expect(r.layer!.mediaType).toBe(MediaType.OCI_LAYER_GZIP);
      expect(r).not.toHaveProperty('variants');
      const h = createHash('sha256');
      const blob = path.join(dest, 'blobs/sha256', r.layer!.digest.slice(7));
      h.update(execFileSync('gzip', ['-dc', blob]));
      expect(`sha256:${h.digest('hex')}`).toBe(r.layer!.diffID);
    }
    // and zstd when the cache asks for it
    const zdest = path.join(b.dir, 'cache-zstd');
    await b.build(ctx, { tags: ['localhost/comp/e:gzip'], cacheTo: [parseCacheTo(`type=local,dest=${zdest},mode=max,compression=zstd`)] });
    for (const r of (await readLocalCache(zdest)).records.filter((x) => x.layer)) expect(r.layer!.mediaType).toBe(MediaType.OCI_LAYER_ZSTD);
  });
});

describe('re-compression trusts only what kiln hashed', () => {
  const file = (name: string, body: string): LayerEntry => ({ path: name, type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: EPOCH, size: body.length, open: () => Readable.from([Buffer.from(body)]) });

  it('a blob that does not decompress to its diffID is refused (DIGEST_MISMATCH), never re-labelled', async () => {
    const store = await b.store();
    const good = await writeLayer([file('good', 'good\n')], store, { compression: 'zstd' });
    const other = await writeLayer([file('other', 'other\n')], store, { compression: 'zstd' });
    const err = await recompressBlob(store.openBlob(other.digest), other.mediaType, good.diffID, { compression: 'gzip' }, store).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'DIGEST_MISMATCH' });
    const conv = new LayerRecompressor(store);
    const lie = { descriptor: { mediaType: other.mediaType, digest: other.digest, size: other.size }, diffID: good.diffID };
    await expect(conv.layer(lie, { compression: 'gzip' })).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  });

  it('a manifest claiming another blob for a diffID (a hostile image) is not taken as that layer in another compression', async () => {
    const store = await b.store();
    const mine = await writeLayer([file('mine', 'mine\n')], store, { compression: 'zstd' });
    const evil = await writeLayer([file('evil', 'evil\n')], store, { compression: 'gzip' });
    // what reading a hostile manifest records: an unverified claim
    await store.recordDiffID(mine.diffID, { mediaType: evil.mediaType, digest: evil.digest, size: evil.size });
    const out = await new LayerRecompressor(store).layer({ descriptor: { mediaType: mine.mediaType, digest: mine.digest, size: mine.size }, diffID: mine.diffID }, { compression: 'gzip' });
    expect(out.descriptor.digest).not.toBe(evil.digest);
    expect(execFileSync('gzip', ['-dc', store.blobPath(out.descriptor.digest)]).includes(Buffer.from('mine\n'))).toBe(true);
  });
});

describe('output and cache attributes are parsed, never silently ignored', () => {
  it('knows BuildKit\'s compression attributes and refuses unknown ones naming them', () => {
    expect(parseOutputSpec('type=image,compression=zstd,compression-level=19,force-compression=true')).toEqual({ type: 'image', push: false, compression: 'zstd', compressionLevel: 19, forceCompression: true });
    expect(parseOutputSpec('type=registry,name=r/x,force-compression')).toEqual({ type: 'registry', name: ['r/x'], forceCompression: true });
    expect(parseOutputSpec('type=oci,dest=o.tar,compression=uncompressed')).toEqual({ type: 'oci', dest: 'o.tar', tar: true, compression: 'uncompressed' });
    expect(parseOutputSpec('./out')).toEqual({ type: 'local', dest: './out' });
    expect(() => parseOutputSpec('type=image,compresion=gzip')).toThrow(/unknown attribute "compresion" for type=image/);
    expect(() => parseOutputSpec('type=image,compression=brotli')).toThrow(/compression must be gzip, zstd or uncompressed/);
    expect(() => parseOutputSpec('type=image,compression=estargz')).toThrow(/estargz is not supported/);
    expect(() => parseOutputSpec('type=image,compression=gzip,compression-level=12')).toThrow(/gzip compression level must be 0-9/);
    expect(() => parseOutputSpec('type=image,push=maybe')).toThrow(/push must be true or false/);
    expect(() => parseOutputSpec('type=docker,dest=x.tar,compression=zstd')).toThrow(/unknown attribute "compression" for type=docker \(type=docker writes uncompressed layer tars\)/);
    expect(() => parseOutputSpec('type=local,dest=d,platform-split=true')).toThrow(/unknown attribute "platform-split"/);
    expect(parseCacheTo('type=registry,ref=r/c,mode=max,compression=gzip,compression-level=6')).toEqual({ type: 'registry', ref: 'r/c', mode: 'max', cacheMounts: false, compression: 'gzip', compressionLevel: 6 });
    expect(() => parseCacheTo('type=registry,ref=r/c,mod=max')).toThrow(/unknown attribute "mod" for type=registry/);
    expect(() => parseCacheFrom('type=local,src=d,dest=e')).toThrow(/unknown attribute "dest" for type=local/);
    expect(() => parseCacheTo('type=local,dest=d,oci-mediatypes=false')).toThrow(/oci-mediatypes=false is not supported/);
  });

  it('a build whose outputs ask for impossible levels fails before it runs anything', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo never > /never\n` });
    const e = await b.build(ctx, { compression: 'zstd', compressionLevel: 30 }).catch((x: unknown) => x);
    expect(String(e)).toMatch(/zstd compression level must be 1-22, got 30/);
  });
});

describe('OCI manifests from a Docker-format base', () => {
  it('names every layer with its OCI media type (digests unchanged); umoci unpacks it and oci-image-tool validates it', async () => {
    const store = await b.store();
    expect((await store.resolveImage(DOCKER_BASE))!.mediaType).toBe(MediaType.DOCKER_MANIFEST);
    const ctx = await b.context({ 'app.txt': 'from docker\n', Dockerfile: DOCKERFILE(DOCKER_BASE) });
    const dest = path.join(b.dir, 'from-docker-oci');
    const built = await b.build(ctx, { tags: ['localhost/comp/docker:1'], outputs: [{ type: 'oci', dest, tar: false }] });
    const base = await manifestOf(store, DOCKER_BASE);
    expect(base.layers[0]!.mediaType).toBe(MediaType.DOCKER_LAYER_GZIP);
    const m = await manifestOf(store, 'localhost/comp/docker:1');
    expect(m.mediaType).toBe(MediaType.OCI_MANIFEST);
    expect(m.config.mediaType).toBe(MediaType.OCI_CONFIG);
    expect(mediaTypes(m)).toEqual(Array(4).fill(MediaType.OCI_LAYER_GZIP));
    expect(m.layers[0]!.digest).toBe(base.layers[0]!.digest);
    expectValidOci(m, 'manifest');
    await expectLayersMatchDiffIDs(store, 'localhost/comp/docker:1');
    await expectUnpackable(dest, built.result.manifestDigest);
  });

  it('a Docker-format base pulled from the registry gives the same: build, push, pull back, validate', async () => {
    const reg = inject('registry').anon;
    const src = `${reg}/comp/busybox-docker:1`;
    await (await b.store()).setRef(src, (await (await b.store()).resolveImage(DOCKER_BASE))!);
    await push(await b.store(), src, undefined, { insecureRegistries: [reg] });
    // a fresh store pulls the Docker manifest from the registry
    const ctx = await fresh.context({ 'app.txt': 'pulled\n', Dockerfile: DOCKERFILE(src) });
    const target = `${reg}/comp/from-docker:1`;
    await fresh.build(ctx, { tags: [target], push: true, insecureRegistries: [reg] });
    const fs = await fresh.store();
    expect((await fs.resolveImage(src))!.mediaType).toBe(MediaType.DOCKER_MANIFEST);
    const m = await manifestOf(fs, target);
    expect(mediaTypes(m)).toEqual(Array(4).fill(MediaType.OCI_LAYER_GZIP));
    // what the registry serves is the same OCI manifest
    const dir = await mkdtemp(path.join(tmpdir(), 'kiln-comp-'));
    try {
      execFileSync('skopeo', ['copy', '--quiet', '--preserve-digests', '--src-tls-verify=false', `docker://${target}`, `oci:${dir}/layout:t`], { stdio: ['ignore', 'ignore', 'pipe'] });
      const ix = JSON.parse(await readFile(path.join(dir, 'layout/index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
      const pulled = JSON.parse(await readFile(path.join(dir, 'layout/blobs/sha256', ix.manifests[0]!.digest.slice(7)), 'utf8')) as Manifest;
      expect(mediaTypes(pulled)).toEqual(Array(4).fill(MediaType.OCI_LAYER_GZIP));
      execFileSync('umoci', ['unpack', '--image', `${dir}/layout:t`, `${dir}/bundle`], { stdio: ['ignore', 'ignore', 'pipe'] });
      expect(await readFile(path.join(dir, 'bundle/rootfs/app.txt'), 'utf8')).toBe('pulled\n');
      execFileSync('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=t', `${dir}/layout`], { stdio: ['ignore', 'pipe', 'pipe'] });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function recordsWithVariants(root: string): Promise<Array<{ layer?: { mediaType: string }; variants?: Array<{ mediaType: string }> }>> {
  const { readdir } = await import('node:fs/promises');
  const dir = path.join(root, 'cache', 'records');
  const out = [];
  for (const n of await readdir(dir)) {
    const r = JSON.parse(await readFile(path.join(dir, n), 'utf8')) as { layer?: { mediaType: string }; variants?: Array<{ mediaType: string }> };
    if (r.layer && r.variants?.length) out.push(r);
  }
  return out;
}

async function readLocalCache(dest: string): Promise<CacheDocument> {
  const ix = JSON.parse(await readFile(path.join(dest, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  const m = JSON.parse(await readFile(path.join(dest, 'blobs/sha256', ix.manifests[0]!.digest.slice(7)), 'utf8')) as Manifest;
  for (const l of m.layers) expect(l.mediaType.startsWith('application/vnd.oci.image.layer.')).toBe(true);
  return JSON.parse(await readFile(path.join(dest, 'blobs/sha256', m.config.digest.slice(7)), 'utf8')) as CacheDocument;
}

/** umoci unpacks the layout; oci-image-tool validates it (manifest, config, layer media types and digests). */
async function expectUnpackable(layout: string, manifestDigest: string): Promise<void> {
  const ix = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  expect(ix.manifests.map((m) => m.digest)).toEqual([manifestDigest]);
  const tag = ix.manifests[0]!.annotations?.['org.opencontainers.image.ref.name'];
  expect(tag).toBeTruthy();
  const bundle = await mkdtemp(path.join(tmpdir(), 'kiln-umoci-'));
  try {
    execFileSync('umoci', ['unpack', '--image', `${layout}:${tag}`, path.join(bundle, 'b')], { stdio: ['ignore', 'ignore', 'pipe'] });
    expect(await readFile(path.join(bundle, 'b/rootfs/ran.txt'), 'utf8')).toBe('ran\n');
    execFileSync('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${tag}`, layout], { stdio: ['ignore', 'pipe', 'pipe'] });
  } finally {
    await rm(bundle, { recursive: true, force: true });
  }
}
