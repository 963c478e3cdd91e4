import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { posix } from 'node:path';
import { KilnError } from '../errors/index.js';
import { canonicalJSON } from '../image/canonical-json.js';
import { boundedExpansion, openUncompressed, sniffCompression, uncompressedDigest, type DetectedCompression } from '../layer/decompress.js';
import { proveDiffID } from '../layer/recompress.js';
import { readTar } from '../layer/tar-reader.js';
import { isDigest, type Digest } from '../image/digest.js';
import { isIndexMediaType, isManifestMediaType, layerCompression, MAX_MANIFEST_BYTES, MediaType, ociLayerMediaType } from '../image/media-types.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../image/types.js';
import { OCI_INDEX_FILE, OCI_LAYOUT_FILE, layoutBlobPath } from '../image/oci-layout.js';
import type { Store } from '../store/store.js';
import { blobHead, type DockerArchiveManifestEntry } from './docker-archive.js';
import { CONTAINERD_NAME_ANNOTATION, OCI_REF_ANNOTATION } from './oci-archive.js';
import type { LoadedImage } from './saved-image.js';

export interface LoadOptions {
  /**
   * Turns a name found in the archive (`busybox:latest`, `docker.io/x/y:1`)
   * into the full reference the store uses; the CLI passes the registry
   * module's normaliser. Names that throw are skipped. Default: as written.
   */
  normaliseName?: (name: string) => string;
  /** Told about each name the store refused (e.g. `name@digest` of other content): the image is loaded without it. */
  onWarning?: (message: string) => void;
}

/**
 * Metadata members (manifest.json, index.json, configs, …) up to this size are
 * kept in memory; bigger ones go straight to the blob store.
 */
const SMALL_LIMIT = 16 * 1024 * 1024;
/** All of them together: a small archive of many big `.json` members must not take gigabytes of memory. */
const SMALL_TOTAL_LIMIT = 64 * 1024 * 1024;
const SMALL_NAMES = new Set([OCI_INDEX_FILE, OCI_LAYOUT_FILE, 'manifest.json', 'repositories']);

interface FileBlob {
  digest: Digest;
  size: number;
  compression: DetectedCompression;
}

/**
 * Loads an OCI archive (an image layout as a tar) or a `docker save` archive,
 * gzip/zstd-compressed or not, in one pass over the file. Blobs named by digest
 * are verified as they are written; docker-archive layers are stored as they
 * are (so their digest is their diffID unless compressed), and an uncompressed
 * layer whose compressed form is already in the store is represented by that
 * blob, so a round trip through `docker save` gives back the same manifest.
 */
export async function loadArchive(store: Store, path: string, opts: LoadOptions = {}): Promise<LoadedImage[]> {
  const fh = await open(path, 'r').catch((e: NodeJS.ErrnoException) => {
    throw new KilnError(e.code === 'ENOENT' ? 'NOT_FOUND' : 'ARCHIVE', `cannot open ${path}: ${e.message}`);
  });
  const { size } = await fh.stat();
  await fh.close();
  // compressed or not, as the first bytes say (the same rule as for layers), and bounded in what it
  // may expand to: a 134 KB zstd archive once wrote a 4 GiB blob into the store
  const plain = openUncompressed(createReadStream(path), MediaType.OCI_LAYER);
  const input = boundedExpansion(plain, size, path);

  const small = new Map<string, Buffer>();
  let smallBytes = 0;
  const blobs = new Set<Digest>();
  const files = new Map<string, FileBlob>();
  const links = new Map<string, string>();

  try {
    for await (const { header: h, body } of readTar(input)) {
      const name = posix.normalize(h.name).replace(/^(\.\/)+/, '').replace(/\/$/, '');
      if (h.type === 'symlink' || h.type === 'hardlink') {
        const target = h.type === 'symlink' ? posix.normalize(posix.join(posix.dirname(name), h.linkname)) : posix.normalize(h.linkname);
        links.set(name, target);
        continue;
      }
      if (h.type !== 'file') continue;
      const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
      if (m) {
        const d = `sha256:${m[1]}` as Digest;
        await store.writeBlob(body, { digest: d, size: h.size });
        blobs.add(d);
      } else if ((SMALL_NAMES.has(name) || name.endsWith('.json') || name.endsWith('/json') || name.endsWith('/VERSION')) && h.size <= SMALL_LIMIT) {
        smallBytes += h.size - (small.get(name)?.length ?? 0);
        if (smallBytes > SMALL_TOTAL_LIMIT) throw new KilnError('ARCHIVE', `its metadata files (manifest.json, index.json, configs) come to more than ${SMALL_TOTAL_LIMIT / (1024 * 1024)} MiB`);
        const chunks: Buffer[] = [];
        for await (const c of body) chunks.push(c);
        small.set(name, Buffer.concat(chunks));
      } else {
        files.set(name, await writeLayerFile(store, body));
      }
    }
  } catch (e) {
    // the store's own verdicts (a blob that is not what its name says) stand as they are
    if (e instanceof KilnError && e.code !== 'ARCHIVE') throw e;
    throw new KilnError('ARCHIVE', `${path}: not a readable image archive: ${(e as Error).message}`);
  } finally {
    // stopping early (a bad blob) must not leave the file open
    plain.destroy();
  }

  const norm = (n: string): string | undefined => {
    try {
      return opts.normaliseName ? opts.normaliseName(n) : n;
    } catch {
      return undefined;
    }
  };
  const naming: Naming = { norm, warn: opts.onWarning ?? (() => undefined) };

  const dockerManifest = small.get('manifest.json');
  const ociIndex = small.get(OCI_INDEX_FILE);
  if (ociIndex && small.has(OCI_LAYOUT_FILE)) return loadOci(store, parseJSON<Index>(ociIndex, OCI_INDEX_FILE), dockerManifest ? parseJSON<DockerArchiveManifestEntry[]>(dockerManifest, 'manifest.json') : [], naming);
  if (dockerManifest) return loadDocker(store, parseJSON<DockerArchiveManifestEntry[]>(dockerManifest, 'manifest.json'), small, files, links, blobs, naming);
  throw new KilnError('ARCHIVE', `${path}: neither an OCI archive (oci-layout + index.json) nor a docker archive (manifest.json)`);
}

function parseJSON<T>(b: Buffer, what: string): T {
  try {
    return JSON.parse(b.toString('utf8')) as T;
  } catch (e) {
    throw new KilnError('ARCHIVE', `${what} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Writes a docker-archive layer file as a blob and notes its compression. */
async function writeLayerFile(store: Store, body: AsyncIterable<Buffer>): Promise<FileBlob> {
  let compression: DetectedCompression | undefined;
  async function* sniffing(): AsyncGenerator<Uint8Array> {
    for await (const b of body) {
      compression ??= sniffCompression(b);
      yield b;
    }
  }
  const { digest, size } = await store.writeBlob(sniffing());
  return { digest, size, compression: compression ?? 'none' };
}

async function diffIDOf(store: Store, f: FileBlob): Promise<Digest> {
  if (f.compression === 'none') return f.digest;
  return uncompressedDigest(store.openBlob(f.digest), f.compression === 'gzip' ? MediaType.OCI_LAYER_GZIP : MediaType.OCI_LAYER_ZSTD);
}

/**
 * Most images (index.json entries, manifest.json entries) one archive may hold. `docker save` writes
 * one per image; a hostile archive of a few kilobytes listed one manifest 300 times in index.json
 * and made kiln read it, check its layers and name it 300 times (14 s; a 16 MiB index.json holds
 * some 100,000).
 */
export const MAX_ARCHIVE_IMAGES = 4096;

function checkImageCount(n: number, file: string): void {
  if (n > MAX_ARCHIVE_IMAGES) throw new KilnError('ARCHIVE', `${file} lists ${n} images, over kiln's limit of ${MAX_ARCHIVE_IMAGES} for one archive`);
}

/**
 * A compressed blob already in the store whose content has `diffID`, to
 * stand in for a plain-tar layer (so a round trip through `docker save`
 * gives back the same manifest). A pair kiln hashed itself is taken as it
 * is; one that only an image config claimed (a pull, an OCI archive — any
 * config may claim any diffID for its blob) is hashed first.
 */
async function provenBlobFor(store: Store, diffID: Digest): Promise<Descriptor | undefined> {
  for (const d of await store.blobsForDiffID(diffID)) {
    if (d.digest === diffID || layerCompression(d.mediaType) === 'none') continue;
    if ((await proveDiffID(store, d, diffID)) === diffID) return d;
  }
  return undefined;
}

/** A name from an index entry: the full name if present, else ref.name when it is a full reference rather than a bare tag. */
function ociEntryName(d: Descriptor): string | undefined {
  const full = d.annotations?.[CONTAINERD_NAME_ANNOTATION];
  if (full) return full;
  const ref = d.annotations?.[OCI_REF_ANNOTATION];
  if (ref && (ref.includes('/') || ref.includes(':'))) return ref;
  return undefined;
}

async function loadOci(store: Store, index: Index, dockerManifest: DockerArchiveManifestEntry[], naming: Naming): Promise<LoadedImage[]> {
  const out: LoadedImage[] = [];
  checkImageCount(index.manifests?.length ?? 0, 'index.json');
  // a manifest listed again (under another name) is read and checked once
  const images = new Map<Digest, Awaited<ReturnType<Store['imageFromDescriptor']>> | undefined>();
  for (const raw of index.manifests ?? []) {
    const desc: Descriptor = { mediaType: raw.mediaType, digest: raw.digest, size: raw.size, ...(raw.platform ? { platform: raw.platform } : {}) };
    if (!isDigest(desc.digest)) throw new KilnError('ARCHIVE', `index.json names an invalid digest "${desc.digest}"`);
    if (!(await store.hasBlob(desc.digest))) throw new KilnError('ARCHIVE', `index.json names ${desc.digest}, which the archive does not contain`);
    if (!isIndexMediaType(desc.mediaType) && !isManifestMediaType(desc.mediaType)) continue;
    let image = images.get(desc.digest);
    if (!images.has(desc.digest)) {
      // reading the image checks that its config came with the archive; its layers are checked here, then its diffIDs recorded
      image = isManifestMediaType(desc.mediaType) ? await store.imageFromDescriptor(desc) : undefined;
      if (image) for (const l of image.layers) if (!(await store.hasBlob(l.digest))) throw new KilnError('ARCHIVE', `archive lacks layer ${l.digest} of ${desc.digest}`);
      if (image) await store.recordLayers(image);
      images.set(desc.digest, image);
    }
    const names: string[] = [];
    const n = ociEntryName(raw);
    if (n) names.push(n);
    else if (image) {
      // docker save (v25+) writes both formats; its manifest.json has the tags
      const cfgName = layoutBlobPath(image.configDescriptor.digest);
      for (const e of dockerManifest) if (e.Config === cfgName) names.push(...(e.RepoTags ?? []));
    }
    out.push(await nameImage(store, desc, names, naming));
  }
  return out;
}

/** How names found in an archive become store names: normalised (names that fail are skipped), refusals reported. */
interface Naming {
  norm: (n: string) => string | undefined;
  warn: (message: string) => void;
}

async function nameImage(store: Store, desc: Descriptor, names: string[], naming: Naming): Promise<LoadedImage> {
  const refs: string[] = [];
  for (const n of names) {
    const r = naming.norm(n);
    if (r === undefined || refs.includes(r)) continue;
    try {
      await store.setRef(r, desc);
      refs.push(r);
    } catch (e) {
      // the archive's word is not the store's: a name the store refuses (a digest that is not this
      // image's, a name read as a digest) is dropped, and the image loaded without it
      if (!(e instanceof KilnError && e.code === 'INVALID_REFERENCE')) throw e;
      naming.warn(`${e.message}; loaded without that name`);
    }
  }
  if (!refs.length) await store.keepUntagged(desc);
  return { refs, descriptor: desc };
}

async function loadDocker(
  store: Store,
  manifest: DockerArchiveManifestEntry[],
  small: Map<string, Buffer>,
  files: Map<string, FileBlob>,
  links: Map<string, string>,
  blobs: Set<Digest>,
  naming: Naming,
): Promise<LoadedImage[]> {
  if (!Array.isArray(manifest)) throw new KilnError('ARCHIVE', 'manifest.json is not a list');
  const resolveLink = (p: string): string => {
    let cur = posix.normalize(p).replace(/^(\.\/)+/, '');
    for (let i = 0; i < 16 && links.has(cur); i++) cur = links.get(cur)!;
    return cur;
  };
  const blobOfPath = async (p: string): Promise<FileBlob | undefined> => {
    const name = resolveLink(p);
    const f = files.get(name);
    if (f) return f;
    const m = /^blobs\/sha256\/([a-f0-9]{64})$/.exec(name);
    if (m && blobs.has(`sha256:${m[1]}` as Digest)) {
      const d = `sha256:${m[1]}` as Digest;
      const head = await blobHead(store, d);
      return { digest: d, size: (await store.blobSize(d))!, compression: sniffCompression(head) ?? 'none' };
    }
    return undefined;
  };

  const out: LoadedImage[] = [];
  checkImageCount(manifest.length, 'manifest.json');
  // each layer file is decompressed and hashed once, however often the archive lists it: 40 listings of
  // one 256 MiB layer in a 276 KB archive made kiln decompress 10 GB
  const loaded = new Map<Digest, { diffID: Digest; desc: Descriptor }>();
  for (const e of manifest) {
    const cfgPath = resolveLink(e.Config);
    let configBytes = small.get(cfgPath);
    if (!configBytes) {
      const f = await blobOfPath(cfgPath);
      if (!f) throw new KilnError('ARCHIVE', `manifest.json names config ${e.Config}, which the archive does not contain`);
      // held in memory whole, as a pulled config is: within the same bound
      if (f.size > MAX_MANIFEST_BYTES) throw new KilnError('ARCHIVE', `config ${e.Config} is ${f.size} bytes, over kiln's limit of ${MAX_MANIFEST_BYTES / (1024 * 1024)} MiB for an image config`);
      configBytes = await store.readBlob(f.digest);
    }
    const config = parseJSON<ImageConfig>(configBytes, e.Config);
    const configDesc = await store.putBytes(configBytes);
    const diffIDs = config.rootfs?.diff_ids ?? [];
    if (diffIDs.length !== e.Layers.length) throw new KilnError('ARCHIVE', `${e.Config}: ${diffIDs.length} diff_ids for ${e.Layers.length} layers`);
    const layers: Descriptor[] = [];
    for (const [i, lp] of e.Layers.entries()) {
      const f = await blobOfPath(lp);
      if (!f) throw new KilnError('ARCHIVE', `manifest.json names layer ${lp}, which the archive does not contain`);
      let done = loaded.get(f.digest);
      if (done === undefined) {
        const diffID = await diffIDOf(store, f);
        let desc: Descriptor = { mediaType: f.compression === 'gzip' ? MediaType.OCI_LAYER_GZIP : f.compression === 'zstd' ? MediaType.OCI_LAYER_ZSTD : MediaType.OCI_LAYER, digest: f.digest, size: f.size };
        if (f.compression === 'none') {
          const known = await provenBlobFor(store, diffID);
          if (known) desc = { mediaType: ociLayerMediaType(known.mediaType), digest: known.digest, size: known.size };
        }
        // diffIDOf hashed this layer's content, and provenBlobFor the stand-in's: the pair is proven
        await store.recordDiffID(diffID, desc, { verified: true });
        loaded.set(f.digest, (done = { diffID, desc }));
      }
      if (done.diffID !== diffIDs[i]) throw new KilnError('DIGEST_MISMATCH', `layer ${lp} has diffID ${done.diffID}, config says ${diffIDs[i]}`);
      layers.push(done.desc);
    }
    const m: Manifest = { schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: { mediaType: MediaType.OCI_CONFIG, digest: configDesc.digest, size: configDesc.size }, layers };
    const { digest, size } = await store.putBytes(Buffer.from(canonicalJSON(m)));
    out.push(await nameImage(store, { mediaType: MediaType.OCI_MANIFEST, digest, size }, e.RepoTags ?? [], naming));
  }
  return out;
}
