import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { OCI_LAYOUT_BYTES, layoutIndex } from '../image/oci-layout.js';
import type { ImageDraft } from '../image/config.js';
import type { Digest } from '../image/digest.js';
import type { Shape } from '../image/document-shapes.js';
import type { Image, Layer, LayerRef } from '../image/image.js';
import type { Descriptor, ImageConfig, Index, Platform } from '../image/types.js';
import { createFileAtomic } from './atomic-file.js';
import { BlobFiles } from './blobs.js';
import { ImageStore, layerRefOf, type LayerInput, type PutImageOptions } from './images.js';
import { defaultRoot, isScratchName, type StoreLayout } from './layout.js';
import { checkedLayout } from './store-dirs.js';
import { BlobMetadata, type BlobOrigin } from './metadata.js';
import { PartialBlob, removeIdlePartials } from './partial-blob.js';
import { REF_ANNOTATION, RefIndex, type IndexEntry } from './refs.js';
import { adoptSnapshot, ensureSnapshot, type LayerExtractor } from './snapshots.js';
import { extractLayer } from '../layer/extract.js';
import { acquireStoreLock, releaseStoreLock, withExclusiveStore } from './store-lock.js';
import type { BlobStore, BlobVerify, BlobWriteExpectation, RefStore } from './types.js';

export { defaultRoot, REF_ANNOTATION };
export type { BlobOrigin, IndexEntry, LayerInput, PutImageOptions };

/** Partial downloads older than this are swept too. */
const PARTIAL_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

export interface StoreOpenOptions {
  /** How long to wait for a process holding the store exclusively (prune); default: forever. */
  lockTimeoutMs?: number;
  /** Unpacks layers into snapshots; default: the layer module's `extractLayer` (tests wrap it to count extractions). */
  extractLayer?: LayerExtractor;
  /** What `checkedLayout(root)` gave a caller that checked the store before opening it (to sweep it first): not checked twice. */
  layout?: StoreLayout;
}

/**
 * kiln's local store, laid out as an OCI image layout with kiln's own entries
 * beside it (see StoreLayout). The work is done by four parts, each usable on
 * its own: `blobs` (content-addressed files, partial downloads), `refs`
 * (names in index.json), `images` (reading and writing manifests and configs)
 * and `metadata` (the diffID index and blob origins); snapshots are in
 * snapshots.ts. This class opens and locks the root, and forwards the calls
 * most callers make so they need one object.
 *
 * Several processes may share one root: blobs are published by rename,
 * index.json and metadata files are rewritten atomically under an exclusive
 * flock, and the whole store is held with a shared flock so tmp/ is only
 * swept by a process that is alone.
 */
export class Store implements BlobStore, RefStore {
  readonly root: string;
  readonly layout: StoreLayout;
  readonly extractLayer: LayerExtractor;
  readonly blobs: BlobFiles;
  readonly refs: RefIndex;
  readonly metadata: BlobMetadata;
  readonly images: ImageStore;
  private closed = false;

  private constructor(layout: StoreLayout, extract: LayerExtractor) {
    this.layout = layout;
    this.extractLayer = extract;
    this.root = layout.root;
    this.blobs = new BlobFiles(layout);
    const has = (d: Digest) => this.blobs.hasBlob(d);
    this.refs = new RefIndex(layout, this.blobs);
    this.metadata = new BlobMetadata(layout, has, (d) => this.blobs.blobSize(d));
    this.images = new ImageStore(this.blobs, this.refs, this.metadata);
  }

  /** Opens (creating if needed) the store at `root`; default root: `defaultRoot()`. */
  static async open(root: string = defaultRoot(), opts: StoreOpenOptions = {}): Promise<Store> {
    // synchronous: a dozen local calls of microseconds each, which as promises cost every
    // command a dozen event-loop turns before it could start
    const l = opts.layout ?? checkedLayout(root);
    const failed = (e: unknown): KilnError =>
      e instanceof KilnError ? e : new KilnError('STORE', `cannot open store ${l.root}: ${(e as Error).message}`, { cause: e });
    const store = new Store(l, opts.extractLayer ?? extractLayer);
    // Files go through tmp/, so they are only created once the lock is held: a
    // process sweeping tmp/ (alone, exclusive) must not delete them mid-write.
    await acquireStoreLock(l.storeLock, () => store.sweepTmp(), opts.lockTimeoutMs);
    try {
      // the store is an OCI layout kept in place: the marker and index document are the layout module's
      await createFileAtomic(l.ociLayout, OCI_LAYOUT_BYTES, l.tmp);
      await createFileAtomic(l.index, Buffer.from(`${JSON.stringify(layoutIndex([]), null, 2)}\n`), l.tmp);
    } catch (e) {
      await store.close();
      throw failed(e);
    }
    return store;
  }

  /** Releases this object's share of the store lock. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await releaseStoreLock(this.layout.storeLock);
  }

  /** Runs `fn` while no other process has the store open (STORE_LOCKED otherwise, after `timeoutMs`). */
  withExclusive<T>(fn: () => Promise<T>, timeoutMs = 0): Promise<T> {
    return withExclusiveStore(this.layout.storeLock, fn, timeoutMs);
  }

  private async sweepTmp(): Promise<void> {
    const now = Date.now();
    // tmp/ itself was checked at open (a directory of ours, not a link); rm removes a link found in it, never what it points to
    for (const name of await readdir(this.layout.tmp)) {
      // a RUN's scratch dir may still hold a mounted overlay under a running container: deleting
      // through it would empty that container's file system; the sandbox's sweep unmounts first
      if (name === 'partial' || isScratchName(name)) continue;
      await rm(join(this.layout.tmp, name), { recursive: true, force: true }).catch(() => undefined);
    }
    await removeIdlePartials(this.layout.partial, { olderThanMs: PARTIAL_MAX_AGE_MS, now });
  }

  // ---------------------------------------------------------------- blobs (see BlobFiles)

  blobPath(digest: Digest): string {
    return this.blobs.blobPath(digest);
  }
  hasBlob(digest: Digest): Promise<boolean> {
    return this.blobs.hasBlob(digest);
  }
  blobSize(digest: Digest): Promise<number | undefined> {
    return this.blobs.blobSize(digest);
  }
  writeBlob(data: Readable | AsyncIterable<Uint8Array>, expect: BlobWriteExpectation = {}): Promise<{ digest: Digest; size: number }> {
    return this.blobs.writeBlob(data, expect);
  }
  putBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }> {
    return this.blobs.putBytes(bytes);
  }
  putJSON(value: unknown, mediaType: string): Promise<Descriptor> {
    return this.blobs.putJSON(value, mediaType);
  }
  openBlob(digest: Digest, opts: { verify?: BlobVerify; start?: number } = {}): Readable {
    return this.blobs.openBlob(digest, opts);
  }
  readBlob(digest: Digest): Promise<Buffer> {
    return this.blobs.readBlob(digest);
  }
  /** A verified JSON blob checked against `shape` (see image/document-shapes.ts). */
  readJSON<T>(digest: Digest, shape: Shape<T>): Promise<T> {
    return this.blobs.readJSON(digest, shape);
  }
  listBlobs(): Promise<Digest[]> {
    return this.blobs.listBlobs();
  }
  /** Removes a blob and what is recorded about it (GC only; callers hold the store exclusively). */
  async deleteBlob(digest: Digest): Promise<void> {
    await this.blobs.deleteBlob(digest);
    await this.metadata.forgetBlob(digest);
  }
  openPartialBlob(expect: { digest: Digest; size: number }, opts: { signal?: AbortSignal } = {}): Promise<PartialBlob | undefined> {
    return this.blobs.openPartialBlob(expect, opts);
  }

  // ---------------------------------------------------------------- refs (see RefIndex)

  readIndex(): Promise<Index> {
    return this.refs.readIndex();
  }
  listEntries(): Promise<IndexEntry[]> {
    return this.refs.listEntries();
  }
  resolve(ref: string): Promise<Descriptor | undefined> {
    return this.refs.resolve(ref);
  }
  setRef(ref: string, desc: Descriptor): Promise<void> {
    return this.refs.setRef(ref, desc);
  }
  removeRef(ref: string): Promise<boolean> {
    return this.refs.removeRef(ref);
  }
  listRefs(): Promise<Array<{ ref: string; descriptor: Descriptor }>> {
    return this.refs.listRefs();
  }
  keepUntagged(desc: Descriptor): Promise<void> {
    return this.refs.keepUntagged(desc);
  }
  removeDigest(digest: Digest): Promise<string[]> {
    return this.refs.removeDigest(digest);
  }

  // ---------------------------------------------------------------- images (see ImageStore)

  resolveImage(refOrDigest: string): Promise<Descriptor | undefined> {
    return this.images.resolveImage(refOrDigest);
  }
  getImage(refOrDigest: string, opts: { platform?: Platform } = {}): Promise<Image> {
    return this.images.getImage(refOrDigest, opts);
  }
  imageFromDescriptor(desc: Descriptor, opts: { platform?: Platform } = {}): Promise<Image> {
    return this.images.imageFromDescriptor(desc, opts);
  }
  recordLayers(image: Image): Promise<void> {
    return this.images.recordLayers(image);
  }
  layer(ref: LayerRef): Layer {
    return this.images.layer(ref);
  }
  putImage(draft: ImageDraft | { config: ImageConfig; layers: LayerInput[]; annotations?: Record<string, string> }, opts: PutImageOptions = {}): Promise<Image> {
    return this.images.putImage(draft, opts);
  }

  // ---------------------------------------------------------------- metadata (see BlobMetadata)

  recordDiffID(diffID: Digest, blob: Descriptor, opts: { verified?: boolean } = {}): Promise<void> {
    return this.metadata.recordDiffID(diffID, blob, opts);
  }
  blobForDiffID(diffID: Digest): Promise<Descriptor | undefined> {
    return this.metadata.blobForDiffID(diffID);
  }
  blobsForDiffID(diffID: Digest, opts: { verifiedOnly?: boolean } = {}): Promise<Descriptor[]> {
    return this.metadata.blobsForDiffID(diffID, opts);
  }
  listDiffIDs(): Promise<Array<{ diffID: Digest; blob: Descriptor }>> {
    return this.metadata.listDiffIDs();
  }
  forgetDiffIDBlobs(live: ReadonlySet<Digest>): Promise<void> {
    return this.metadata.forgetDiffIDBlobs(live);
  }
  recordBlobOrigin(digest: Digest, registry: string, repository: string): Promise<void> {
    return this.metadata.recordBlobOrigin(digest, registry, repository);
  }
  blobOrigins(digest: Digest): Promise<BlobOrigin[]> {
    return this.metadata.blobOrigins(digest);
  }

  // ---------------------------------------------------------------- snapshots (see snapshots.ts)

  /**
   * Directory holding the layer extracted (with overlay whiteouts), usable as
   * an overlay lowerdir: `s/<first 12 hex of the diffID>`. Made on first use
   * (an explicit write: the caller asks for an extraction); concurrent callers
   * (in this and other processes) share one extraction.
   */
  async snapshotPath(layer: Layer | LayerRef | Digest, signal?: AbortSignal): Promise<string> {
    let ref: LayerRef;
    if (typeof layer === 'string') {
      const blob = await this.metadata.blobForDiffID(layer);
      if (!blob) throw new KilnError('NOT_FOUND', `no layer with diffID ${layer} in store`);
      ref = { descriptor: blob, diffID: layer };
    } else {
      ref = layerRefOf(layer);
    }
    const dir = await ensureSnapshot(this, ref, signal);
    // recorded only once a snapshot exists (an existing one may come from another blob of the same diffID: not a proof)
    await this.metadata.recordDiffID(ref.diffID, ref.descriptor);
    return dir;
  }

  /**
   * Takes a directory that already holds `layer` in overlay format (a RUN's
   * upperdir, minus its mount points) as its snapshot, saving an extraction.
   */
  async adoptSnapshot(layer: LayerRef, dir: string): Promise<boolean> {
    const adopted = await adoptSnapshot(this, layer.diffID, dir);
    // the layer writer hashed the tar it wrote from this directory
    if (adopted) await this.metadata.recordDiffID(layer.diffID, layer.descriptor, { verified: true });
    return adopted;
  }

  /** Path a snapshot has (or would have) — for GC and listings. */
  snapshotDir(diffID: Digest): string {
    return this.layout.snapshot(diffID);
  }
}
