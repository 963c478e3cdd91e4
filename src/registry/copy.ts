import { KilnError } from '../errors/index.js';
import type { Digest } from '../image/digest.js';
import { isIndexMediaType } from '../image/media-types.js';
import { formatPlatform, hostPlatform, parsePlatform, selectManifest } from '../image/platform.js';
import type { Descriptor, Index, Manifest, Platform } from '../image/types.js';
import pLimit from 'p-limit';
import { RegistryClient, type FetchedManifest, type RegistryClientOptions } from './client.js';
import type { RegistryEventListener } from './events.js';
import { BlobProgress } from './progress.js';
import { parseReference, Reference } from './reference.js';

export interface CopyOptions extends RegistryClientOptions {
  client?: RegistryClient;
  /** Copy the whole index rather than the one platform. */
  allPlatforms?: boolean;
  /** Platform to copy out of an index (default: this host). */
  platform?: string | Platform;
  onEvent?: RegistryEventListener;
}

export interface CopyResult {
  src: Reference;
  dest: Reference;
  digest: Digest;
  descriptor: Descriptor;
}

/**
 * Registry to registry, nothing on local disk: every blob streams from a
 * GET on the source into the upload on the destination (ranged GETs per
 * chunk for large blobs, so a chunk can be re-read after a fault). Within
 * one registry blobs are mounted instead of moved.
 */
export async function copy(srcRef: string | Reference, destRef: string | Reference, opts: CopyOptions = {}): Promise<CopyResult> {
  const src = typeof srcRef === 'string' ? parseReference(srcRef) : srcRef;
  const dest = typeof destRef === 'string' ? parseReference(destRef) : destRef;
  const client = opts.client ?? new RegistryClient(opts);
  const onEvent = opts.onEvent ?? opts.client?.opts.onEvent;
  try {
    const top = await client.getManifest(src, { forPull: true });
    let chosen = top;
    if (isIndexMediaType(top.mediaType) && !opts.allPlatforms) {
      const want = typeof opts.platform === 'string' ? parsePlatform(opts.platform) : opts.platform ?? hostPlatform();
      const index = JSON.parse(top.bytes.toString('utf8')) as Index;
      const d = selectManifest(index.manifests.filter((m) => !isIndexMediaType(m.mediaType)), want);
      if (!d) throw new KilnError('NOT_FOUND', `${src.familiar()}: no image for platform ${formatPlatform(want)}`);
      chosen = await client.getManifestFrom(top.endpoint, src, d.digest);
    }
    await copyDocument(client, src, dest, chosen, true, opts, onEvent);
    return { src, dest, digest: chosen.digest, descriptor: { mediaType: chosen.mediaType, digest: chosen.digest, size: chosen.bytes.length } };
  } finally {
    if (!opts.client) await client.close();
  }
}

async function copyDocument(client: RegistryClient, src: Reference, dest: Reference, doc: FetchedManifest, isTop: boolean, opts: CopyOptions, onEvent: RegistryEventListener | undefined): Promise<void> {
  if (isIndexMediaType(doc.mediaType)) {
    const index = JSON.parse(doc.bytes.toString('utf8')) as Index;
    for (const d of index.manifests) {
      await copyDocument(client, src, dest, await client.getManifestFrom(doc.endpoint, src, d.digest), false, opts, onEvent);
    }
  } else {
    const m = JSON.parse(doc.bytes.toString('utf8')) as Manifest;
    const sameRegistry = src.registry === dest.registry && !doc.endpoint.mirror;
    const limit = pLimit(Math.max(1, opts.uploadConcurrency ?? client.opts.uploadConcurrency ?? 3));
    const blobs = new Map<Digest, Descriptor>();
    for (const b of [m.config, ...(m.layers ?? [])]) if (!b.urls?.length) blobs.set(b.digest, b);
    await Promise.all([...blobs.values()].map((b) => limit(async () => {
      const progress = new BlobProgress('push-progress', dest.toString(), b.digest, b.mediaType, b.size, onEvent);
      progress.emit('waiting', 0);
      const outcome = await client.pushBlob(dest, b, (start, end) => client.blob(src, b, { endpoint: doc.endpoint, start, end }), {
        mountFrom: sameRegistry ? [src.repository] : [],
        onProgress: (n, phase) => progress.emit(phase, n),
      });
      progress.emit(outcome === 'uploaded' ? 'done' : outcome, b.size);
    })));
  }
  const identifier = isTop ? dest.tag ?? dest.digest ?? doc.digest : doc.digest;
  await client.putManifest(dest, identifier, doc.bytes, doc.mediaType);
}
