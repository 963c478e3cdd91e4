import { tempStore as sharedTempStore } from '../../helpers/temp-dir.js';
import { randomBytes } from 'node:crypto';
import { MediaType } from '../../../src/image/media-types.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../../../src/image/types.js';
import { Store } from '../../../src/store/store.js';

/** A fresh Store in a temp dir (the shared helper, which schema-checks it at the end); `dispose` closes and deletes it. */
export async function tempStore(): Promise<{ store: Store; root: string; dispose: () => Promise<void> }> {
  const t = await sharedTempStore();
  return { store: t.store, root: t.root, dispose: t.cleanup };
}

export interface TestImage {
  manifest: Manifest;
  descriptor: Descriptor;
  bytes: Buffer;
  layers: Buffer[];
}

/**
 * Writes an image of random layers into the store (transport tests do not
 * care what the bytes mean) and tags it `ref` when given.
 */
export async function makeRandomImage(store: Store, ref: string | undefined, layerSizes: number[], opts: { arch?: string; mediaType?: 'oci' | 'docker' } = {}): Promise<TestImage> {
  const docker = opts.mediaType === 'docker';
  const layers = layerSizes.map((n) => randomBytes(n));
  const layerDescs: Descriptor[] = [];
  for (const l of layers) {
    const { digest, size } = await store.putBytes(l);
    layerDescs.push({ mediaType: docker ? MediaType.DOCKER_LAYER_GZIP : MediaType.OCI_LAYER_GZIP, digest, size });
  }
  const config: ImageConfig = {
    architecture: opts.arch ?? 'amd64',
    os: 'linux',
    config: { Env: [`NONCE=${randomBytes(8).toString('hex')}`] },
    rootfs: { type: 'layers', diff_ids: layerDescs.map((d) => d.digest) },
  };
  const cfg = await store.putBytes(Buffer.from(JSON.stringify(config)));
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: docker ? MediaType.DOCKER_MANIFEST : MediaType.OCI_MANIFEST,
    config: { mediaType: docker ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG, digest: cfg.digest, size: cfg.size },
    layers: layerDescs,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const m = await store.putBytes(bytes);
  const descriptor: Descriptor = { mediaType: manifest.mediaType!, digest: m.digest, size: m.size };
  if (ref) await store.setRef(ref, descriptor);
  return { manifest, descriptor, bytes, layers };
}

/** An index over two random single-platform images (amd64, arm64), tagged `ref`. */
export async function makeRandomIndex(store: Store, ref: string, layerSize = 1024): Promise<{ index: Index; descriptor: Descriptor; children: TestImage[] }> {
  const amd = await makeRandomImage(store, undefined, [layerSize], { arch: 'amd64' });
  const arm = await makeRandomImage(store, undefined, [layerSize], { arch: 'arm64' });
  const index: Index = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_INDEX,
    manifests: [
      { ...amd.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
      { ...arm.descriptor, platform: { architecture: 'arm64', os: 'linux' } },
    ],
  };
  const { digest, size } = await store.putBytes(Buffer.from(JSON.stringify(index)));
  const descriptor: Descriptor = { mediaType: MediaType.OCI_INDEX, digest, size };
  await store.setRef(ref, descriptor);
  return { index, descriptor, children: [amd, arm] };
}

let counter = 0;
/** A repository name no other test uses. */
export function uniqueRepo(prefix = 'test'): string {
  return `${prefix}/r${process.pid}-${Date.now().toString(36)}-${counter++}`;
}
