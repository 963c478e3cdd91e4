import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { openUncompressed } from '../layer/decompress.js';
import type { ImageDraft } from '../image/config.js';
import { isDigest, type Digest } from '../image/digest.js';
import { configShape, indexShape, manifestShape, objectShape, type Shape } from '../image/document-shapes.js';
import type { Image, Layer, LayerRef } from '../image/image.js';
import { isIndexMediaType, isManifestMediaType, MAX_MANIFEST_BYTES, MediaType, ociLayerMediaType } from '../image/media-types.js';
import { formatPlatform, hostPlatform, selectManifest } from '../image/platform.js';
import type { Descriptor, ImageConfig, Manifest, Platform } from '../image/types.js';
import type { WrittenLayer } from '../layer/types.js';
import type { BlobFiles } from './blobs.js';
import { decodeStoreJSON } from './json-file.js';
import type { BlobMetadata } from './metadata.js';
import { refDigest } from './ref-names.js';
import { stripRef, type IndexEntry, type RefIndex } from './refs.js';

/** What `putImage` accepts for each layer: a store Layer, a layer descriptor + diffID, or what writeLayer returned. */
export type LayerInput = Layer | LayerRef | WrittenLayer;

export interface PutImageOptions {
  /** Tag the image with this (already normalised) reference. */
  ref?: string;
  /** Manifest format; default OCI. Docker schema 2 is only possible where lossless. */
  format?: 'oci' | 'docker';
}

export function layerRefOf(l: LayerInput): LayerRef {
  if ('descriptor' in l) return { descriptor: l.descriptor, diffID: l.diffID };
  return { descriptor: { mediaType: l.mediaType, digest: l.digest, size: l.size }, diffID: l.diffID };
}

/** Just enough of a document to tell a manifest from an index. */
const documentKindShape: Shape<{ mediaType?: unknown; manifests?: unknown; config?: unknown }> = (v) => objectShape(v, 'document');

/**
 * Images over the blob and ref parts: name/digest lookup, reading an image
 * (an index resolves to one platform's manifest), and writing one (config +
 * manifest, OCI or lossless Docker schema 2). Reading never writes: the
 * diffID pairs of an image are recorded by whoever brought it into the store
 * (`putImage`, pull, load), through `recordLayers`.
 */
export class ImageStore {
  constructor(
    private readonly blobs: BlobFiles,
    private readonly refs: RefIndex,
    private readonly metadata: BlobMetadata,
  ) {}

  /**
   * A reference, a full digest, or an unambiguous hex prefix (≥ 4) of a stored
   * image's manifest digest → its descriptor. A reference with a digest
   * (`name@sha256:…`) is looked up by that digest only: index.json may hold a
   * name an older kiln recorded without checking it (or that was written by
   * hand), and `FROM name@digest` must get the content the digest names.
   */
  async resolveImage(refOrDigest: string): Promise<Descriptor | undefined> {
    // one read of index.json serves the name, the digest and the prefix lookups
    const entries = await this.refs.listEntries();
    const pinned = refDigest(refOrDigest);
    if (pinned !== undefined) return isDigest(pinned) ? this.byPinnedName(refOrDigest, pinned, entries) : undefined;
    // `sha256:…` is a digest (or a prefix of one): a stored name of that spelling does not shadow it
    if (!refOrDigest.startsWith('sha256:')) {
      const byRef = entries.find((e) => e.ref === refOrDigest);
      if (byRef) return byRef.descriptor;
    }
    const s = refOrDigest.startsWith('sha256:') ? refOrDigest : `sha256:${refOrDigest}`;
    if (isDigest(s)) return this.byDigest(s, entries);
    if (/^(sha256:)?[a-f0-9]{4,63}$/.test(refOrDigest)) {
      const hits = new Map<string, Descriptor>();
      for (const e of entries) if (e.descriptor.digest.startsWith(s)) hits.set(e.descriptor.digest, e.descriptor);
      if (hits.size > 1) throw new KilnError('USAGE', `"${refOrDigest}" matches several images; give more digits`);
      return hits.values().next().value;
    }
    return undefined;
  }

  /** The image with manifest (or index) digest `digest`: an index.json entry's descriptor, else the document itself. */
  private async byDigest(digest: Digest, entries: IndexEntry[]): Promise<Descriptor | undefined> {
    const entry = entries.find((e) => e.descriptor.digest === digest);
    if (entry) return entry.descriptor;
    if (!(await this.blobs.hasBlob(digest))) return undefined;
    return this.describeDocument(digest);
  }

  /**
   * `name@digest`. The stored name is used only where the content shows it
   * true: a pull by the digest of a multi-platform index names the one
   * platform's manifest it kept, which that index (in the store) lists — the
   * manifest the name gave before, so a build for another platform still
   * pulls that platform. Otherwise the digest alone decides.
   */
  private async byPinnedName(ref: string, digest: Digest, entries: IndexEntry[]): Promise<Descriptor | undefined> {
    const same = entries.find((e) => e.descriptor.digest === digest);
    if (same) return same.descriptor;
    const named = entries.find((e) => e.ref === ref);
    if (named && (await this.refs.pins(ref, named.descriptor.digest))) return named.descriptor;
    return this.byDigest(digest, entries);
  }

  /** Descriptor for a manifest or index blob known only by digest. */
  private async describeDocument(digest: Digest): Promise<Descriptor> {
    const notImage = () => new KilnError('UNSUPPORTED', `blob ${digest} is not an image manifest or index`);
    // a name may give the digest of a layer of gigabytes: no document is that big, so it is not read
    if ((await this.blobs.blobSize(digest) ?? 0) > MAX_MANIFEST_BYTES) throw notImage();
    const b = await this.blobs.readBlob(digest);
    let doc: { mediaType?: unknown; manifests?: unknown; config?: unknown };
    try {
      doc = decodeStoreJSON(b.toString('utf8'), `blob ${digest}`, documentKindShape);
    } catch (e) {
      if (e instanceof KilnError && e.code === 'STORE') throw notImage();
      throw e;
    }
    const mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : doc.manifests ? MediaType.OCI_INDEX : doc.config ? MediaType.OCI_MANIFEST : undefined;
    if (!mediaType || !(isIndexMediaType(mediaType) || isManifestMediaType(mediaType))) throw notImage();
    return { mediaType, digest, size: b.length };
  }

  /**
   * The image a reference or digest names. An index resolves to the manifest
   * for `platform` (default: this host).
   */
  async getImage(refOrDigest: string, opts: { platform?: Platform } = {}): Promise<Image> {
    const desc = await this.resolveImage(refOrDigest);
    if (!desc) throw new KilnError('NOT_FOUND', `image "${refOrDigest}" not found in store`);
    return this.imageFromDescriptor(desc, opts);
  }

  /** Reads an image; touches nothing on disk. */
  async imageFromDescriptor(desc: Descriptor, opts: { platform?: Platform } = {}): Promise<Image> {
    if (isIndexMediaType(desc.mediaType)) {
      const index = await this.blobs.readJSON(desc.digest, indexShape);
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
    const manifest = await this.blobs.readJSON(desc.digest, manifestShape);
    const config = await this.blobs.readJSON(manifest.config.digest, configShape);
    const diffIDs = config.rootfs?.diff_ids ?? [];
    if (diffIDs.length !== manifest.layers.length) {
      throw new KilnError('STORE', `image ${desc.digest}: ${manifest.layers.length} layers but ${diffIDs.length} diff_ids in its config`);
    }
    const layers = manifest.layers.map((d, i) => new StoreLayer(this.blobs, d, diffIDs[i]!));
    return { descriptor: stripRef(desc), manifest, config, configDescriptor: manifest.config, layers };
  }

  /**
   * Records the diffID → blob pair of each of the image's layers (claims read
   * from its config, not verified): for writers that brought it into the store.
   */
  async recordLayers(image: Image): Promise<void> {
    await Promise.all(image.layers.map((l) => this.metadata.recordDiffID(l.diffID, l.descriptor)));
  }

  /** Wraps a layer blob of this store (for code that builds images layer by layer). */
  layer(ref: LayerRef): Layer {
    return new StoreLayer(this.blobs, ref.descriptor, ref.diffID);
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
      if (!(await this.blobs.hasBlob(r.descriptor.digest))) throw new KilnError('NOT_FOUND', `putImage: layer blob ${r.descriptor.digest} is not in the store`);
    }
    const docker = opts.format === 'docker';
    const configDesc = await this.blobs.putJSON(draft.config, docker ? MediaType.DOCKER_CONFIG : MediaType.OCI_CONFIG);
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
    const desc = await this.blobs.putJSON(manifest, manifest.mediaType!);
    const image: Image = {
      descriptor: desc,
      manifest,
      config: draft.config,
      configDescriptor: manifest.config,
      layers: manifest.layers.map((d, i) => new StoreLayer(this.blobs, d, refs[i]!.diffID)),
    };
    await Promise.all(refs.map((r) => this.metadata.recordDiffID(r.diffID, r.descriptor)));
    if (opts.ref !== undefined) await this.refs.setRef(opts.ref, desc);
    return image;
  }
}

/** A layer blob of the store. */
class StoreLayer implements Layer {
  readonly digest: Digest;
  readonly size: number;
  readonly mediaType: string;
  constructor(
    private readonly blobs: BlobFiles,
    readonly descriptor: Descriptor,
    readonly diffID: Digest,
  ) {
    this.digest = descriptor.digest;
    this.size = descriptor.size;
    this.mediaType = descriptor.mediaType;
  }
  open(): Readable {
    return this.blobs.openBlob(this.digest);
  }
  openUncompressed(): Readable {
    return openUncompressed(this.open(), this.mediaType);
  }
}
