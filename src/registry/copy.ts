import { KilnError } from '../errors/index.js';
import type { Digest } from '../image/digest.js';
import { isIndexMediaType } from '../image/media-types.js';
import { formatPlatform, hostPlatform, parsePlatform, selectManifest } from '../image/platform.js';
import type { Descriptor, Manifest, Platform } from '../image/types.js';
import pLimit from 'p-limit';
import { RegistryClient, type FetchedManifest, type RegistryClientOptions } from './client.js';
import { checkDescriptor, checkDocumentSize, checkFetchedSize, fetchDocumentTree, indexEntries, parseJSON } from './documents.js';
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
 *
 * The source is as untrusted as a pull's: its documents are fetched once
 * each within the same limits, and every descriptor in them is checked
 * before the destination sees a request.
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
      const d = selectManifest(indexEntries(top, src).filter((m) => !isIndexMediaType(m.mediaType)), want);
      if (!d) throw new KilnError('NOT_FOUND', `${src.familiar()}: no image for platform ${formatPlatform(want)}`);
      checkDocumentSize(d, 'manifest', src);
      chosen = await client.getManifestFrom(top.endpoint, src, d.digest);
      checkFetchedSize(chosen, d, src);
    }
    // children before the indexes that list them, `chosen` last
    const documents = await fetchDocumentTree(client, src, chosen);
    const manifests = new Map<Digest, Manifest>();
    for (const doc of documents) {
      if (isIndexMediaType(doc.mediaType)) continue;
      const m = parseJSON<Manifest>(doc, src);
      for (const b of [m.config, ...(m.layers ?? [])]) checkDescriptor(b, 'blob', src);
      manifests.set(doc.digest, m);
    }
    for (const doc of documents) {
      const m = manifests.get(doc.digest);
      if (m) await copyBlobs(client, src, dest, doc, m, opts, onEvent);
      const identifier = doc === chosen ? dest.tag ?? dest.digest ?? doc.digest : doc.digest;
      await client.putManifest(dest, identifier, doc.bytes, doc.mediaType);
    }
    return { src, dest, digest: chosen.digest, descriptor: { mediaType: chosen.mediaType, digest: chosen.digest, size: chosen.bytes.length } };
  } finally {
    if (!opts.client) await client.close();
  }
}

async function copyBlobs(client: RegistryClient, src: Reference, dest: Reference, doc: FetchedManifest, m: Manifest, opts: CopyOptions, onEvent: RegistryEventListener | undefined): Promise<void> {
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
