import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { canonicalBytes } from '../image/canonical-json.js';
import { decompress } from '../image/compression.js';
import type { ImageDraft } from '../image/config.js';
import { digestHex, digestOfHash, isDigest, sha256, type Digest } from '../image/digest.js';
import type { Image, Layer, LayerRef } from '../image/image.js';
import { isIndexMediaType, isManifestMediaType, layerCompression, MediaType, ociLayerMediaType } from '../image/media-types.js';
import { hostPlatform, formatPlatform, selectManifest } from '../image/platform.js';
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from '../image/types.js';
import type { WrittenLayer } from '../layer/types.js';
import { createFileAtomic, fsyncDir, tempName, writeFileAtomic } from './atomic-file.js';
import { withFileLock } from './flock.js';
import { PartialBlob, removeIdlePartials } from './partial-blob.js';
import { defaultRoot, isScratchName, storeLayout, type StoreLayout } from './layout.js';
import { adoptSnapshot, ensureSnapshot, snapshotDirName, type LayerExtractor } from './snapshots.js';
import { extractLayer } from '../layer/extract.js';
import { acquireStoreLock, releaseStoreLock, withExclusiveStore } from './store-lock.js';
import type { BlobStore, BlobWriteExpectation, RefStore } from './types.js';

export { defaultRoot };

/** The annotation that names an image in an OCI layout's index.json. */
export const REF_ANNOTATION = 'org.opencontainers.image.ref.name';

/** Partial downloads older than this are swept too. */
const PARTIAL_MAX_AGE_MS = 7 * 24 * 3600 * 1000;

export interface StoreOpenOptions {
  /** How long to wait for a process holding the store exclusively (prune); default: forever. */
  lockTimeoutMs?: number;
  /** Unpacks layers into snapshots; default: the layer module's `extractLayer` (tests wrap it to count extractions). */
  extractLayer?: LayerExtractor;
}

export interface IndexEntry {
  /** Undefined for an image kept without a name (e.g. loaded from an archive without tags). */
  ref?: string;
  descriptor: Descriptor;
}

export interface BlobOrigin {
  registry: string;
  repository: string;
}

/** One blob known to hold a diffID's content; `verified` when kiln hashed it itself. */
interface DiffIDEntry extends Descriptor {
  verified?: boolean;
}

/** What `putImage` accepts for each layer: a store Layer, a layer descriptor + diffID, or what writeLayer returned. */
export type LayerInput = Layer | LayerRef | WrittenLayer;

export interface PutImageOptions {
  /** Tag the image with this (already normalised) reference. */
  ref?: string;
  /** Manifest format; default OCI. Docker schema 2 is only possible where lossless. */
  format?: 'oci' | 'docker';
}

function isNotFound(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT';
}

function toBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (typeof chunk === 'string') return Buffer.from(chunk);
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  throw new KilnError('INTERNAL', 'blob data must be bytes');
}

function layerRefOf(l: LayerInput): LayerRef {
  if ('descriptor' in l) return { descriptor: l.descriptor, diffID: l.diffID };
  return { descriptor: { mediaType: l.mediaType, digest: l.digest, size: l.size }, diffID: l.diffID };
}

/**
 * The store root, the snapshots and the RUN scratch dirs are private to the
 * store's owner. Snapshots are image file systems unpacked as they are:
 * setuid-root binaries and device nodes a hostile image chose the modes of. A
 * path to them that another local user can traverse is a local root (the
 * class of Docker's CVE-2021-41091), so the root is 0700, not 0711: unlike
 * Docker with user-namespace remapping, no process of another uid ever needs
 * to traverse it (runc resolves the rootfs as root and pivots into it). The
 * snapshot and scratch parents are 0700 as well, so a root loosened by hand
 * to share the OCI layout still exposes no unpacked file system.
 */
const PRIVATE_DIR_MODE = 0o700;

/** Creates the private directories, and takes back what an older kiln (or a chmod) left open. */
async function makePrivate(l: StoreLayout): Promise<void> {
  for (const d of [l.snapshots, l.tmp]) await mkdir(d, { recursive: true, mode: PRIVATE_DIR_MODE });
  // cache-mounts/ is made (0700) by the first cache mount
  for (const d of [l.root, l.snapshots, l.tmp, l.cacheMounts]) {
    const st = await stat(d).catch(() => undefined);
    if (st && (st.mode & 0o777) !== PRIVATE_DIR_MODE) await chmod(d, PRIVATE_DIR_MODE);
  }
}

/**
 * kiln's local store: a content-addressed blob store laid out as an OCI image
 * layout, with names in index.json, extracted layer snapshots and metadata.
 * Several processes may share one root: blobs are published by rename,
 * index.json is rewritten under an exclusive flock, and the whole store is
 * held with a shared flock so tmp/ is only swept by a process that is alone.
 */
export class Store implements BlobStore, RefStore {
  readonly root: string;
  readonly layout: StoreLayout;
  readonly extractLayer: LayerExtractor;
  private closed = false;
  private readonly lockPath: string;

  private constructor(layout: StoreLayout, extract: LayerExtractor) {
    this.layout = layout;
    this.extractLayer = extract;
    this.root = layout.root;
    this.lockPath = join(layout.locks, 'store');
  }

  /** Opens (creating if needed) the store at `root`; default root: `defaultRoot()`. */
  static async open(root: string = defaultRoot(), opts: StoreOpenOptions = {}): Promise<Store> {
    const l = storeLayout(root);
    const store = new Store(l, opts.extractLayer ?? extractLayer);
    const failed = (e: unknown): KilnError =>
      e instanceof KilnError ? e : new KilnError('STORE', `cannot open store ${l.root}: ${(e as Error).message}`, { cause: e });
    try {
      await mkdir(l.root, { recursive: true, mode: PRIVATE_DIR_MODE });
      await makePrivate(l);
      for (const d of [l.blobs, l.tmp, l.partial, l.snapshots, l.cache, l.locks, l.diffids, l.origins]) await mkdir(d, { recursive: true });
    } catch (e) {
      throw failed(e);
    }
    // Files go through tmp/, so they are only created once the lock is held: a
    // process sweeping tmp/ (alone, exclusive) must not delete them mid-write.
    await acquireStoreLock(store.lockPath, () => store.sweepTmp(), opts.lockTimeoutMs);
    try {
      await createFileAtomic(l.ociLayout, canonicalBytes({ imageLayoutVersion: '1.0.0' }), l.tmp);
      await createFileAtomic(l.index, Buffer.from(`${JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] }, null, 2)}\n`), l.tmp);
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
    await releaseStoreLock(this.lockPath);
  }

  /** Runs `fn` while no other process has the store open (STORE_LOCKED otherwise, after `timeoutMs`). */
  withExclusive<T>(fn: () => Promise<T>, timeoutMs = 0): Promise<T> {
    return withExclusiveStore(this.lockPath, fn, timeoutMs);
  }

  private async sweepTmp(): Promise<void> {
    const now = Date.now();
    for (const name of await readdir(this.layout.tmp)) {
      // a RUN's scratch dir may still hold a mounted overlay under a running container: deleting
      // through it would empty that container's file system; the sandbox's sweep unmounts first
      if (name === 'partial' || isScratchName(name)) continue;
      await rm(join(this.layout.tmp, name), { recursive: true, force: true }).catch(() => undefined);
    }
    await removeIdlePartials(this.layout.partial, { olderThanMs: PARTIAL_MAX_AGE_MS, now });
  }

  // ---------------------------------------------------------------- blobs

  blobPath(digest: Digest): string {
    return join(this.layout.blobs, digestHex(digest));
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    return (await this.blobSize(digest)) !== undefined;
  }

  async blobSize(digest: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(digest))).size;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async writeBlob(data: Readable | AsyncIterable<Uint8Array>, expect: BlobWriteExpectation = {}): Promise<{ digest: Digest; size: number }> {
    const tmp = tempName(this.layout.tmp, 'blob');
    const fh = await open(tmp, 'wx', 0o644);
    let closed = false;
    let published = false;
    try {
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of data as AsyncIterable<unknown>) {
        const b = toBuffer(chunk);
        size += b.length;
        if (expect.size !== undefined && size > expect.size) throw this.sizeMismatch(expect, size, '>');
        hash.update(b);
        await fh.write(b);
      }
      await fh.sync();
      await fh.close();
      closed = true;
      const digest = digestOfHash(hash);
      if (expect.digest !== undefined && digest !== expect.digest) {
        throw new KilnError('DIGEST_MISMATCH', `blob digest mismatch: expected ${expect.digest}, got ${digest}`);
      }
      if (expect.size !== undefined && size !== expect.size) throw this.sizeMismatch(expect, size, '');
      // Renaming over an existing blob is harmless (same bytes) and repairs a corrupted one.
      await rename(tmp, this.blobPath(digest));
      published = true;
      await fsyncDir(this.layout.blobs);
      return { digest, size };
    } finally {
      if (!closed) await fh.close().catch(() => undefined);
      if (!published) await rm(tmp, { force: true });
    }
  }

  private sizeMismatch(expect: BlobWriteExpectation, got: number, more: string): KilnError {
    const what = expect.digest ? `blob ${expect.digest}` : 'blob';
    return new KilnError('SIZE_MISMATCH', `${what} size mismatch: expected ${expect.size} bytes, got ${more}${got}`);
  }

  putBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }> {
    return this.writeBlob(Readable.from([Buffer.from(bytes)]));
  }

  /** Stores a JSON document in canonical encoding and returns its descriptor. */
  async putJSON(value: unknown, mediaType: string): Promise<Descriptor> {
    const { digest, size } = await this.putBytes(canonicalBytes(value));
    return { mediaType, digest, size };
  }

  /**
   * Streams a blob. With `verify`, the stream fails at its end with
   * DIGEST_MISMATCH when the bytes on disk do not hash to `digest`.
   */
  openBlob(digest: Digest, opts: { verify?: boolean; start?: number } = {}): Readable {
    if (opts.verify && opts.start) throw new KilnError('INTERNAL', 'openBlob: verify needs the whole blob (start must be 0)');
    const src = createReadStream(this.blobPath(digest), opts.start ? { start: opts.start } : {});
    const hash = opts.verify ? createHash('sha256') : undefined;
    const out = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        hash?.update(chunk);
        cb(null, chunk);
      },
      flush(cb) {
        if (!hash) return cb();
        const got = digestOfHash(hash);
        cb(got === digest ? null : new KilnError('DIGEST_MISMATCH', `blob ${digest} is corrupted: its content hashes to ${got}`));
      },
    });
    src.on('error', (e) => out.destroy(isNotFound(e) ? new KilnError('NOT_FOUND', `blob ${digest} not found in store`) : e));
    out.on('close', () => src.destroy());
    return src.pipe(out);
  }

  /** Whole blob in memory, always verified (meant for manifests and configs). */
  async readBlob(digest: Digest): Promise<Buffer> {
    let b: Buffer;
    try {
      b = await readFile(this.blobPath(digest));
    } catch (e) {
      if (isNotFound(e)) throw new KilnError('NOT_FOUND', `blob ${digest} not found in store`);
      throw e;
    }
    const got = sha256(b);
    if (got !== digest) throw new KilnError('DIGEST_MISMATCH', `blob ${digest} is corrupted: its content hashes to ${got}`);
    return b;
  }

  async readJSON<T>(digest: Digest): Promise<T> {
    const b = await this.readBlob(digest);
    try {
      return JSON.parse(b.toString('utf8')) as T;
    } catch (e) {
      throw new KilnError('STORE', `blob ${digest} is not JSON: ${(e as Error).message}`);
    }
  }

  /** Every published blob digest. */
  async listBlobs(): Promise<Digest[]> {
    const names = await readdir(this.layout.blobs);
    return names.map((n) => `sha256:${n}`).filter(isDigest);
  }

  /** Removes a blob (GC only; callers must hold the store exclusively). */
  async deleteBlob(digest: Digest): Promise<void> {
    await rm(this.blobPath(digest), { force: true });
    await rm(join(this.layout.origins, `${digestHex(digest)}.json`), { force: true });
  }

  /**
   * The resumable download of `expect.digest` (tmp/partial/<hex>), held
   * exclusively until committed, discarded or released; waits while another
   * process downloads the same blob. Undefined when the blob is already
   * published. See PartialBlob.
   */
  openPartialBlob(expect: { digest: Digest; size: number }, opts: { signal?: AbortSignal } = {}): Promise<PartialBlob | undefined> {
    return PartialBlob.open({ partialDir: this.layout.partial, blobsDir: this.layout.blobs }, expect, opts);
  }

  // ---------------------------------------------------------------- refs (index.json)

  /** index.json as it is now (a consistent snapshot: it is only ever replaced by rename). */
  async readIndex(): Promise<Index> {
    try {
      return JSON.parse(await readFile(this.layout.index, 'utf8')) as Index;
    } catch (e) {
      throw new KilnError('STORE', `cannot read ${this.layout.index}: ${(e as Error).message}`);
    }
  }

  /** Read-modify-write of index.json under the exclusive index lock, written atomically. */
  private async updateIndex<T>(f: (entries: IndexEntry[]) => T): Promise<T> {
    return withFileLock(join(this.layout.locks, 'index'), async () => {
      const entries = toEntries(await this.readIndex());
      const result = f(entries);
      const manifests = sortEntries(entries).map(({ ref, descriptor }) => {
        const d: Descriptor = { ...descriptor };
        if (ref !== undefined) d.annotations = { ...(descriptor.annotations ?? {}), [REF_ANNOTATION]: ref };
        return d;
      });
      const index: Index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
      await writeFileAtomic(this.layout.index, Buffer.from(`${JSON.stringify(index, null, 2)}\n`), this.layout.tmp);
      return result;
    });
  }

  async listEntries(): Promise<IndexEntry[]> {
    return toEntries(await this.readIndex());
  }

  async resolve(ref: string): Promise<Descriptor | undefined> {
    return (await this.listEntries()).find((e) => e.ref === ref)?.descriptor;
  }

  async setRef(ref: string, desc: Descriptor): Promise<void> {
    checkRef(ref);
    if (!(await this.hasBlob(desc.digest))) throw new KilnError('NOT_FOUND', `cannot tag ${ref}: manifest ${desc.digest} is not in the store`);
    const clean = stripRef(desc);
    await this.updateIndex((entries) => {
      for (let i = entries.length - 1; i >= 0; i--) {
        const e = entries[i]!;
        // a name replaces its old target; a named entry makes the unnamed keep-entry of the same image redundant
        if (e.ref === ref || (e.ref === undefined && e.descriptor.digest === clean.digest)) entries.splice(i, 1);
      }
      entries.push({ ref, descriptor: clean });
    });
  }

  async removeRef(ref: string): Promise<boolean> {
    return this.updateIndex((entries) => {
      const i = entries.findIndex((e) => e.ref === ref);
      if (i < 0) return false;
      entries.splice(i, 1);
      return true;
    });
  }

  async listRefs(): Promise<Array<{ ref: string; descriptor: Descriptor }>> {
    return (await this.listEntries()).filter((e): e is { ref: string; descriptor: Descriptor } => e.ref !== undefined);
  }

  /** Keeps an image without a name (listed as <none>, a GC root) unless a name already points to it. */
  async keepUntagged(desc: Descriptor): Promise<void> {
    if (!(await this.hasBlob(desc.digest))) throw new KilnError('NOT_FOUND', `manifest ${desc.digest} is not in the store`);
    const clean = stripRef(desc);
    await this.updateIndex((entries) => {
      if (!entries.some((e) => e.descriptor.digest === clean.digest)) entries.push({ descriptor: clean });
    });
  }

  /** Drops every index.json entry (named or not) that points to `digest`; returns the names removed. */
  async removeDigest(digest: Digest): Promise<string[]> {
    return this.updateIndex((entries) => {
      const removed: string[] = [];
      for (let i = entries.length - 1; i >= 0; i--) {
        if (entries[i]!.descriptor.digest !== digest) continue;
        const [e] = entries.splice(i, 1);
        if (e?.ref !== undefined) removed.push(e.ref);
      }
      return removed;
    });
  }

  /**
   * A reference, a full digest, or an unambiguous hex prefix (≥ 4) of a stored
   * image's manifest digest → its descriptor.
   */
  async resolveImage(refOrDigest: string): Promise<Descriptor | undefined> {
    // one read of index.json serves the name, the digest and the prefix lookups
    const entries = await this.listEntries();
    const byRef = entries.find((e) => e.ref === refOrDigest);
    if (byRef) return byRef.descriptor;
    const s = refOrDigest.startsWith('sha256:') ? refOrDigest : `sha256:${refOrDigest}`;
    if (isDigest(s)) {
      const entry = entries.find((e) => e.descriptor.digest === s);
      if (entry) return entry.descriptor;
      if (!(await this.hasBlob(s))) return undefined;
      return this.describeDocument(s);
    }
    if (/^(sha256:)?[a-f0-9]{4,63}$/.test(refOrDigest)) {
      const hits = new Map<string, Descriptor>();
      for (const e of entries) if (e.descriptor.digest.startsWith(s)) hits.set(e.descriptor.digest, e.descriptor);
      if (hits.size > 1) throw new KilnError('USAGE', `"${refOrDigest}" matches several images; give more digits`);
      return hits.values().next().value;
    }
    return undefined;
  }

  /** Descriptor for a manifest or index blob known only by digest. */
  private async describeDocument(digest: Digest): Promise<Descriptor> {
    const b = await this.readBlob(digest);
    let doc: { mediaType?: string; manifests?: unknown; config?: unknown };
    try {
      doc = JSON.parse(b.toString('utf8')) as typeof doc;
    } catch {
      throw new KilnError('UNSUPPORTED', `blob ${digest} is not an image manifest or index`);
    }
    const mediaType = doc.mediaType ?? (doc.manifests ? MediaType.OCI_INDEX : doc.config ? MediaType.OCI_MANIFEST : undefined);
    if (!mediaType || !(isIndexMediaType(mediaType) || isManifestMediaType(mediaType))) {
      throw new KilnError('UNSUPPORTED', `blob ${digest} is not an image manifest or index`);
    }
    return { mediaType, digest, size: b.length };
  }

  // ---------------------------------------------------------------- images

  /**
   * The image a reference or digest names. An index resolves to the manifest
   * for `platform` (default: this host).
   */
  async getImage(refOrDigest: string, opts: { platform?: Platform } = {}): Promise<Image> {
    const desc = await this.resolveImage(refOrDigest);
    if (!desc) throw new KilnError('NOT_FOUND', `image "${refOrDigest}" not found in store`);
    return this.imageFromDescriptor(desc, opts);
  }

  async imageFromDescriptor(desc: Descriptor, opts: { platform?: Platform } = {}): Promise<Image> {
    if (isIndexMediaType(desc.mediaType)) {
      const index = await this.readJSON<Index>(desc.digest);
      const want = opts.platform ?? hostPlatform();
      // an index of one manifest without a platform (some tools write those) means that manifest
      const lone = index.manifests.length === 1 && !index.manifests[0]!.platform ? index.manifests[0] : undefined;
      const chosen = selectManifest(index.manifests, want) ?? lone;
      if (!chosen) {
        const have = index.manifests.filter((m) => m.platform).map((m) => formatPlatform(m.platform!));
        throw new KilnError('NOT_FOUND', `no image for platform ${formatPlatform(want)} in ${desc.digest} (has ${have.join(', ') || 'none'})`);
      }
      return this.imageFromDescriptor(chosen, opts);
    }
    if (!isManifestMediaType(desc.mediaType)) throw new KilnError('UNSUPPORTED', `unsupported manifest media type ${desc.mediaType}`);
    const manifest = await this.readJSON<Manifest>(desc.digest);
    const config = await this.readJSON<ImageConfig>(manifest.config.digest);
    const diffIDs = config.rootfs?.diff_ids ?? [];
    if (diffIDs.length !== manifest.layers.length) {
      throw new KilnError('STORE', `image ${desc.digest}: ${manifest.layers.length} layers but ${diffIDs.length} diff_ids in its config`);
    }
    const layers = manifest.layers.map((d, i) => new StoreLayer(this, d, diffIDs[i]!));
    await Promise.all(layers.map((l) => this.recordDiffID(l.diffID, l.descriptor)));
    return { descriptor: stripRef(desc), manifest, config, configDescriptor: manifest.config, layers };
  }

  /** Wraps a layer blob of this store (for code that builds images layer by layer). */
  layer(ref: LayerRef): Layer {
    return new StoreLayer(this, ref.descriptor, ref.diffID);
  }

  /**
   * Writes an image's config and manifest (layer blobs must be in the store
   * already) and tags it when `opts.ref` is given. The config is authoritative:
   * its rootfs.diff_ids must list the layers' diffIDs in order.
   */
  async putImage(draft: ImageDraft | { config: ImageConfig; layers: LayerInput[]; annotations?: Record<string, string> }, opts: PutImageOptions = {}): Promise<Image> {
    const refs = draft.layers.map(layerRefOf);
    const diffIDs = draft.config.rootfs.diff_ids;
    if (diffIDs.length !== refs.length) {
      throw new KilnError('INTERNAL', `putImage: ${refs.length} layers but ${diffIDs.length} diff_ids in the config`);
    }
    for (const [i, r] of refs.entries()) {
      if (r.diffID !== diffIDs[i]) throw new KilnError('INTERNAL', `putImage: layer ${i} has diffID ${r.diffID}, config says ${diffIDs[i]}`);
      if (!(await this.hasBlob(r.descriptor.digest))) throw new KilnError('NOT_FOUND', `putImage: layer blob ${r.descriptor.digest} is not in the store`);
    }
    const docker = opts.format === 'docker';
    const configDesc = await this.putJSON(draft.config, docker ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG);
    let manifest: Manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      config: configDesc,
      // a base pulled in Docker format keeps its blobs, but its layers are named in OCI terms: an OCI manifest never mixes the two
      layers: refs.map((r) => ({ mediaType: ociLayerMediaType(r.descriptor.mediaType), digest: r.descriptor.digest, size: r.descriptor.size, ...(r.descriptor.annotations ? { annotations: r.descriptor.annotations } : {}) })),
    };
    if (draft.annotations && Object.keys(draft.annotations).length) manifest.annotations = { ...draft.annotations };
    if (docker) {
      const { manifestToDocker } = await import('../image/convert.js');
      manifest = manifestToDocker({ ...manifest, config: { ...configDesc, mediaType: MediaType.OCI_CONFIG } });
    }
    const desc = await this.putJSON(manifest, manifest.mediaType!);
    const image: Image = {
      descriptor: desc,
      manifest,
      config: draft.config,
      configDescriptor: manifest.config,
      layers: manifest.layers.map((d, i) => new StoreLayer(this, d, refs[i]!.diffID)),
    };
    await Promise.all(refs.map((r) => this.recordDiffID(r.diffID, r.descriptor)));
    if (opts.ref !== undefined) await this.setRef(opts.ref, desc);
    return image;
  }

  // ---------------------------------------------------------------- diffIDs and snapshots

  /**
   * Remembers that `blob` holds the layer with `diffID` (so a snapshot can be
   * made from a diffID alone, and a layer found in another compression). One
   * file per diffID lists every known blob, first recorded first; blobs no
   * longer in the store drop out when the list is next written. `verified`
   * says kiln itself hashed the blob's content to `diffID` (it wrote, extracted
   * or re-compressed it); a pair read from a manifest is only a claim.
   */
  async recordDiffID(diffID: Digest, blob: Descriptor, opts: { verified?: boolean } = {}): Promise<void> {
    const path = join(this.layout.diffids, digestHex(diffID));
    const settled = (list: DiffIDEntry[]) => list.some((d) => d.digest === blob.digest && (d.verified || !opts.verified));
    // the common case (every image read records its layers again) writes nothing
    if (settled(await this.readDiffIDFile(path))) return;
    await withFileLock(join(this.layout.locks, 'diffids'), async () => {
      const list = await this.readDiffIDFile(path);
      if (settled(list)) return;
      const next: DiffIDEntry[] = [];
      let seen = false;
      for (const d of list) {
        if (d.digest === blob.digest) {
          seen = true;
          next.push({ ...d, verified: true });
        } else if (await this.hasBlob(d.digest)) next.push(d);
      }
      if (!seen) next.push({ mediaType: blob.mediaType, digest: blob.digest, size: blob.size, ...(opts.verified ? { verified: true } : {}) });
      await writeFileAtomic(path, canonicalBytes(next), this.layout.tmp);
    });
  }

  /** The blobs recorded for a diffID (an older store wrote a single descriptor). */
  private async readDiffIDFile(path: string): Promise<DiffIDEntry[]> {
    const raw = await readFile(path, 'utf8').catch(() => undefined);
    if (!raw) return [];
    try {
      const v = JSON.parse(raw) as DiffIDEntry | DiffIDEntry[];
      return (Array.isArray(v) ? v : [v]).filter((d) => d && typeof d.digest === 'string' && isDigest(d.digest));
    } catch {
      return [];
    }
  }

  /** The stored blob whose uncompressed content has `diffID`, if known and present. */
  async blobForDiffID(diffID: Digest): Promise<Descriptor | undefined> {
    return (await this.blobsForDiffID(diffID))[0];
  }

  /**
   * Every stored blob (one per compression) whose uncompressed content has
   * `diffID`, first recorded first; with `verifiedOnly`, only those kiln hashed
   * itself — what may stand in for a layer in another image.
   */
  async blobsForDiffID(diffID: Digest, opts: { verifiedOnly?: boolean } = {}): Promise<Descriptor[]> {
    const out: Descriptor[] = [];
    for (const d of await this.readDiffIDFile(join(this.layout.diffids, digestHex(diffID)))) {
      if (opts.verifiedOnly && !d.verified) continue;
      if (await this.hasBlob(d.digest)) out.push({ mediaType: d.mediaType, digest: d.digest, size: d.size });
    }
    // an uncompressed layer is its own diffID: its name proves the pair
    if (!out.some((d) => d.digest === diffID) && (await this.hasBlob(diffID))) out.push({ mediaType: MediaType.OCI_LAYER, digest: diffID, size: (await this.blobSize(diffID))! });
    return out;
  }

  /** All recorded diffID → blob pairs (one pair per blob). */
  async listDiffIDs(): Promise<Array<{ diffID: Digest; blob: Descriptor }>> {
    const out: Array<{ diffID: Digest; blob: Descriptor }> = [];
    for (const name of await readdir(this.layout.diffids)) {
      const diffID = `sha256:${name}`;
      if (!isDigest(diffID)) continue;
      for (const d of await this.readDiffIDFile(join(this.layout.diffids, name))) out.push({ diffID, blob: { mediaType: d.mediaType, digest: d.digest, size: d.size } });
    }
    return out;
  }

  /** Drops diffID records of blobs that are not `live` (GC only; callers hold the store exclusively). */
  async forgetDiffIDBlobs(live: ReadonlySet<Digest>): Promise<void> {
    for (const name of await readdir(this.layout.diffids)) {
      const path = join(this.layout.diffids, name);
      const list = await this.readDiffIDFile(path);
      const keep = list.filter((d) => live.has(d.digest));
      if (keep.length === list.length) continue;
      if (keep.length === 0) await rm(path, { force: true });
      else await writeFileAtomic(path, canonicalBytes(keep), this.layout.tmp);
    }
  }

  /**
   * Directory holding the layer extracted (with overlay whiteouts), usable as
   * an overlay lowerdir: `s/<first 12 hex of the diffID>`. Made on first use;
   * concurrent callers (in this and other processes) share one extraction.
   */
  async snapshotPath(layer: Layer | LayerRef | Digest): Promise<string> {
    let ref: LayerRef;
    if (typeof layer === 'string') {
      const blob = await this.blobForDiffID(layer);
      if (!blob) throw new KilnError('NOT_FOUND', `no layer with diffID ${layer} in store`);
      ref = { descriptor: blob, diffID: layer };
    } else {
      ref = layerRefOf(layer);
    }
    const dir = await ensureSnapshot(this, ref);
    // recorded only once a snapshot exists (an existing one may come from another blob of the same diffID: not a proof)
    await this.recordDiffID(ref.diffID, ref.descriptor);
    return dir;
  }

  /**
   * Takes a directory that already holds `layer` in overlay format (a RUN's
   * upperdir, minus its mount points) as its snapshot, saving an extraction.
   */
  async adoptSnapshot(layer: LayerRef, dir: string): Promise<boolean> {
    const adopted = await adoptSnapshot(this, layer.diffID, dir);
    // the layer writer hashed the tar it wrote from this directory
    if (adopted) await this.recordDiffID(layer.diffID, layer.descriptor, { verified: true });
    return adopted;
  }

  /** Path a snapshot has (or would have) — for GC and listings. */
  snapshotDir(diffID: Digest): string {
    return join(this.layout.snapshots, snapshotDirName(diffID));
  }

  // ---------------------------------------------------------------- blob origins

  /** Notes that `digest` exists in `registry/repository` (a later push may mount it from there). */
  async recordBlobOrigin(digest: Digest, registry: string, repository: string): Promise<void> {
    const path = join(this.layout.origins, `${digestHex(digest)}.json`);
    await withFileLock(join(this.layout.locks, 'origins'), async () => {
      const list = await this.blobOrigins(digest);
      const rest = list.filter((o) => !(o.registry === registry && o.repository === repository));
      // most recent first, bounded: mounts try a few candidates at most
      const next = [{ registry, repository }, ...rest].slice(0, 16);
      await writeFileAtomic(path, canonicalBytes(next), this.layout.tmp);
    });
  }

  async blobOrigins(digest: Digest): Promise<BlobOrigin[]> {
    const raw = await readFile(join(this.layout.origins, `${digestHex(digest)}.json`), 'utf8').catch(() => undefined);
    if (!raw) return [];
    try {
      return JSON.parse(raw) as BlobOrigin[];
    } catch {
      return [];
    }
  }
}

/** A layer blob of a Store. */
class StoreLayer implements Layer {
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
  constructor(
    private readonly store: Store,
    readonly descriptor: Descriptor,
    readonly diffID: Digest,
  ) {
    this.digest = descriptor.digest;
    this.size = descriptor.size;
    this.mediaType = descriptor.mediaType;
  }
  open(): Readable {
    return this.store.openBlob(this.digest);
  }
  openUncompressed(): Readable {
    return decompress(this.open(), layerCompression(this.mediaType));
  }
}

function checkRef(ref: string): void {
  if (!ref || /[\s\u0000-\u001f]/.test(ref)) throw new KilnError('INVALID_REFERENCE', `invalid reference "${ref}"`);
}

function stripRef(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.platform) out.platform = d.platform;
  if (d.urls) out.urls = d.urls;
  if (d.artifactType) out.artifactType = d.artifactType;
  if (d.annotations) {
    const { [REF_ANNOTATION]: _ref, ...rest } = d.annotations;
    if (Object.keys(rest).length) out.annotations = rest;
  }
  return out;
}

function toEntries(index: Index): IndexEntry[] {
  return (index.manifests ?? []).map((d) => {
    const ref = d.annotations?.[REF_ANNOTATION];
    return ref === undefined ? { descriptor: stripRef(d) } : { ref, descriptor: stripRef(d) };
  });
}

function sortEntries(entries: IndexEntry[]): IndexEntry[] {
  return [...entries].sort((a, b) => {
    if (a.ref === undefined || b.ref === undefined) return a.ref === b.ref ? a.descriptor.digest.localeCompare(b.descriptor.digest) : a.ref === undefined ? 1 : -1;
    return a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0;
  });
}
