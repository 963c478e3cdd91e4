import pLimit from 'p-limit';
import { KilnError } from '../errors/index.js';
import type { Digest } from '../image/digest.js';
import type { Image } from '../image/image.js';
import { isIndexMediaType, MediaType } from '../image/media-types.js';
import { formatPlatform, hostPlatform, parsePlatform, selectManifest } from '../image/platform.js';
import type { Descriptor, Manifest, Platform } from '../image/types.js';
import { RangeNotSatisfiable, RegistryClient, type FetchedManifest, type RegistryClientOptions } from './client.js';
import { checkDescriptor, checkDocumentSize, checkFetchedSize, fetchDocumentTree, indexEntries, parseJSON } from './documents.js';
import type { RegistryEventListener } from './events.js';
import type { Endpoint } from './http.js';
import { BlobProgress } from './progress.js';
import { parseReference, Reference } from './reference.js';
import type { RegistryStore } from './store-access.js';

export interface PullOptions extends RegistryClientOptions {
  /** A client to reuse (its options win); otherwise one is made and closed. */
  client?: RegistryClient;
  /** `os/arch[/variant]` or a Platform; default: this host. */
  platform?: string | Platform;
  /** Keep the whole index and every platform's blobs. */
  allPlatforms?: boolean;
  onEvent?: RegistryEventListener;
}

export interface PullResult {
  ref: Reference;
  /** What the reference is tagged with in the store: the platform's manifest, or the index with allPlatforms. */
  descriptor: Descriptor;
  /** The image manifest's digest (the selected platform's; the index's with allPlatforms). */
  manifestDigest: Digest;
  /** The index's digest when the reference named one. */
  indexDigest?: Digest;
  /** The pulled image, when the store can read images and one platform was pulled. */
  image?: Image;
}

/**
 * Pulls `ref` into the store: manifest (mirrors first for docker.io), the
 * platform's manifest out of an index, then config and layers in parallel,
 * each streamed through the store's digest and size checks. Manifests are
 * written after their blobs and the tag last, once the image reads back
 * whole, so a failed pull leaves the name as it was: never pointing at an
 * incomplete or inconsistent image.
 */
export async function pull(store: RegistryStore, ref: string | Reference, opts: PullOptions = {}): Promise<PullResult> {
  const r = typeof ref === 'string' ? parseReference(ref) : ref;
  const client = opts.client ?? new RegistryClient(opts);
  const onEvent = opts.onEvent ?? opts.client?.opts.onEvent;
  try {
    const top = await client.getManifest(r, { forPull: true });
    const want = typeof opts.platform === 'string' ? parsePlatform(opts.platform) : opts.platform ?? hostPlatform();
    let documents: FetchedManifest[] = [top];
    const images: Array<{ manifest: Manifest; fetched: FetchedManifest }> = [];
    let tagged: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.bytes.length };
    let manifestDigest = top.digest;

    if (isIndexMediaType(top.mediaType)) {
      if (opts.allPlatforms) {
        // each document once, however often indexes list it, within the depth, count and byte limits
        documents = await fetchDocumentTree(client, r, top);
        for (const d of documents) if (!isIndexMediaType(d.mediaType)) images.push({ manifest: parseJSON<Manifest>(d, r), fetched: d });
      } else {
        const entries = indexEntries(top, r);
        const chosen = selectManifest(entries.filter((m) => !isIndexMediaType(m.mediaType)), want);
        if (!chosen) {
          const have = entries.filter((m) => m.platform).map((m) => formatPlatform(m.platform!));
          throw new KilnError('NOT_FOUND', `${r.familiar()}: no image for platform ${formatPlatform(want)} (the index has ${have.join(', ') || 'no platforms'})`);
        }
        checkDocumentSize(chosen, 'manifest', r);
        const child = await client.getManifestFrom(top.endpoint, r, chosen.digest);
        checkFetchedSize(child, chosen, r);
        documents.push(child);
        images.push({ manifest: parseJSON<Manifest>(child, r), fetched: child });
        tagged = { mediaType: child.mediaType, digest: child.digest, size: child.bytes.length, ...(chosen.platform ? { platform: chosen.platform } : {}) };
        manifestDigest = child.digest;
      }
    } else {
      images.push({ manifest: parseJSON<Manifest>(top, r), fetched: top });
    }

    await pullBlobs(store, client, r, images, opts.concurrency ?? client.opts.concurrency ?? 4, onEvent);

    for (const d of documents) {
      const w = await store.putBytes(d.bytes);
      if (w.digest !== d.digest) throw new KilnError('STORE', `store wrote manifest ${d.digest} as ${w.digest}`);
    }

    const result: PullResult = { ref: r, descriptor: tagged, manifestDigest };
    if (isIndexMediaType(top.mediaType)) result.indexDigest = top.digest;
    // read the image back before the name moves: one that does not hold together (a config whose
    // diff_ids do not match the layers) fails the pull here, and the name keeps what it had
    if (!isIndexMediaType(tagged.mediaType) && store.imageFromDescriptor) {
      result.image = await store.imageFromDescriptor(tagged, { platform: want });
    }
    await store.setRef(r.toString(), tagged);
    if (result.image) await store.recordLayers?.(result.image);
    return result;
  } finally {
    if (!opts.client) await client.close();
  }
}

const NON_DISTRIBUTABLE = new Set<string>([
  MediaType.DOCKER_FOREIGN_LAYER,
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
]);

async function pullBlobs(
  store: RegistryStore,
  client: RegistryClient,
  r: Reference,
  images: Array<{ manifest: Manifest; fetched: FetchedManifest }>,
  concurrency: number,
  onEvent: RegistryEventListener | undefined,
): Promise<void> {
  const seen = new Map<Digest, { desc: Descriptor; ep: Endpoint }>();
  for (const { manifest, fetched } of images) {
    // the config is read into memory later: refuse an oversized one before downloading it
    if (manifest.config) checkDocumentSize(manifest.config, 'image config', r);
    for (const d of [manifest.config, ...(manifest.layers ?? [])]) {
      checkDescriptor(d, 'blob', r);
      if (NON_DISTRIBUTABLE.has(d.mediaType) && d.urls?.length) continue;
      if (!seen.has(d.digest)) seen.set(d.digest, { desc: d, ep: fetched.endpoint });
    }
  }
  const limit = pLimit(Math.max(1, concurrency));
  const origin = { registry: r.registry, repository: r.repository };
  const failures: unknown[] = [];
  await Promise.all([...seen.values()].map(({ desc, ep }) => limit(async () => {
    if (failures.length) return;
    const progress = new BlobProgress('pull-progress', r.toString(), desc.digest, desc.mediaType, desc.size, onEvent);
    try {
      if ((await store.blobSize(desc.digest)) === desc.size) {
        progress.emit('exists', desc.size);
      } else {
        progress.emit('downloading', 0);
        await downloadBlob(store, client, r, desc, ep, progress);
        progress.emit('done', desc.size);
      }
      await store.recordBlobOrigin?.(desc.digest, origin.registry, origin.repository);
    } catch (e) {
      failures.push(e);
    }
  })));
  if (failures.length) throw failures[0];
}

async function downloadBlob(store: RegistryStore, client: RegistryClient, r: Reference, desc: Descriptor, ep: Endpoint, progress: BlobProgress): Promise<void> {
  const all = ep.mirror ? client.http.endpointsFor(r, true) : [];
  const endpoints = ep.mirror ? all.slice(all.findIndex((e) => e.host === ep.host)) : [ep];
  let lastError: unknown;
  for (const e of endpoints) {
    try {
      if (desc.size >= RESUMABLE_MIN && store.openPartialBlob) {
        await downloadResumable(store, client, r, desc, e, progress);
        return;
      }
      const data = client.blob(r, desc, { endpoint: e, onProgress: (n, phase) => progress.emit(phase, n) });
      await store.writeBlob(data, { digest: desc.digest, size: desc.size });
      return;
    } catch (err) {
      lastError = err;
      if (err instanceof KilnError && (err.code === 'DIGEST_MISMATCH' || err.code === 'SIZE_MISMATCH')) {
        throw new KilnError(err.code, `${r.familiar()}: ${err.message} (downloaded from ${e.host}; nothing was kept)`);
      }
      if (!e.mirror) break;
    }
  }
  throw lastError;
}

/** Blobs at least this big are downloaded through a partial file that survives an interrupted pull. */
const RESUMABLE_MIN = 4 * 1024 * 1024;

/**
 * Downloads through the store's partial file for this digest, locked while
 * this process writes it (another pull of the same blob waits, then finds it
 * published). Continues from the bytes a killed or failed earlier pull left
 * there (HTTP Range); a partial that already holds every byte is verified
 * and published without a request. A prefix the registry refuses (416) or
 * that proves wrong (digest mismatch) is thrown away once and the blob
 * downloaded from byte 0; any other mismatch (a body longer than the
 * descriptor's size included) deletes the partial file.
 */
async function downloadResumable(store: RegistryStore, client: RegistryClient, r: Reference, desc: Descriptor, ep: Endpoint, progress: BlobProgress): Promise<void> {
  const signal = client.opts.signal;
  const part = await store.openPartialBlob!({ digest: desc.digest, size: desc.size }, signal ? { signal } : {});
  if (!part) return; // another process published it while this one waited
  try {
    for (let fresh = false; ; fresh = true) {
      const from = part.offset;
      if (from > 0) progress.emit('resumed', from);
      if (from < desc.size) {
        try {
          for await (const chunk of client.blob(r, desc, { endpoint: ep, start: from, onProgress: (n, phase) => progress.emit(phase, from + n) })) {
            await part.append(chunk);
          }
        } catch (e) {
          if (e instanceof RangeNotSatisfiable && !fresh) {
            onWarning(client, `${r.familiar()}: the registry refused to resume blob ${desc.digest} at byte ${from}; downloading it again from the start`);
            await part.restart();
            continue;
          }
          // a body longer than the descriptor says is not a prefix worth resuming: nothing is kept
          if (e instanceof KilnError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH')) await part.discard();
          throw e;
        }
      }
      try {
        await part.commit();
        return;
      } catch (e) {
        if (from > 0 && !fresh && e instanceof KilnError && e.code === 'DIGEST_MISMATCH') {
          onWarning(client, `${r.familiar()}: the kept part of blob ${desc.digest} was wrong; downloading it again from the start`);
          await part.restart();
          continue;
        }
        if (e instanceof KilnError && (e.code === 'DIGEST_MISMATCH' || e.code === 'SIZE_MISMATCH')) await part.discard();
        throw e;
      }
    }
  } finally {
    // a failed transfer keeps its bytes for the next pull (no-op after commit or discard)
    await part.release();
  }
}

function onWarning(client: RegistryClient, message: string): void {
  client.opts.onEvent?.({ type: 'warning', message });
}
