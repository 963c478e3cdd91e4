import { isIndexMediaType, MAX_INDEX_DEPTH } from '../image/media-types.js';
import { hostPlatform, selectManifest } from '../image/platform.js';
import type { Descriptor, Platform } from '../image/types.js';
import { KilnError } from '../errors/index.js';
import { writeOciLayout, type LayoutImage } from '../image/oci-layout.js';
import { indexShape, manifestShape } from '../image/document-shapes.js';
import type { Store } from '../store/store.js';
import { ArchiveWriter, DirectoryWriter } from './archive-writer.js';
import { tagOf, type SaveItem } from './saved-image.js';
import type { Exporter } from './exporter.js';

export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';
/** Tags in an OCI layout's index.json: the same annotation the store uses. */
export { REF_ANNOTATION as OCI_REF_ANNOTATION } from '../store/store.js';
import { REF_ANNOTATION as OCI_REF_ANNOTATION } from '../store/store.js';

/**
 * The blobs an image needs, in the order they are written, each once. An
 * index is kept whole when all its manifests are in the store, else reduced
 * to the manifest for `platform` (what kiln would run), so the archive is
 * always complete. Each document is visited once however often it is listed
 * (an index naming the next one twice at every level would otherwise cost
 * 2^depth visits).
 */
export async function imageClosure(store: Store, desc: Descriptor, platform: Platform = hostPlatform()): Promise<{ top: Descriptor; blobs: Descriptor[] }> {
  const blobs: Descriptor[] = [];
  const seen = new Set<string>();
  const add = (d: Descriptor): void => {
    if (seen.has(d.digest)) return;
    seen.add(d.digest);
    blobs.push(d);
  };
  const walk = async (d: Descriptor, depth: number): Promise<Descriptor> => {
    if (isIndexMediaType(d.mediaType)) {
      if (depth > MAX_INDEX_DEPTH) throw new KilnError('UNSUPPORTED', `image ${desc.digest} nests indexes more than ${MAX_INDEX_DEPTH} deep`);
      const index = await store.readJSON(d.digest, indexShape);
      const present = await Promise.all(index.manifests.map((m) => store.hasBlob(m.digest)));
      if (present.every(Boolean)) {
        // a child walked to its end is in `seen`: a document listed twice is walked once
        for (const m of index.manifests) if (!seen.has(m.digest)) await walk(m, depth + 1);
        add(d);
        return d;
      }
      const chosen = selectManifest(index.manifests.filter((_, i) => present[i]), platform);
      if (!chosen) throw new KilnError('NOT_FOUND', `index ${d.digest} has no manifest for this platform in the store`);
      return walk(chosen, depth + 1);
    }
    const m = await store.readJSON(d.digest, manifestShape);
    for (const l of [m.config, ...m.layers]) {
      if (!(await store.hasBlob(l.digest))) throw new KilnError('NOT_FOUND', `blob ${l.digest} of image ${d.digest} is not in the store`);
    }
    for (const b of [m.config, ...m.layers, d]) add(b);
    return { mediaType: d.mediaType, digest: d.digest, size: d.size, ...(d.platform ? { platform: d.platform } : {}) };
  };
  // the top index counts as the first level, as for a pull
  const top = await walk(desc, 1);
  return { top, blobs };
}

/**
 * Writes an OCI image layout as a tar (what `skopeo … oci-archive:` and
 * `docker save` since v25 produce). Each image's index.json entry carries
 * `io.containerd.image.name` (the full name) and `org.opencontainers.image.ref.name`
 * (its tag, as umoci and skopeo expect).
 */
export async function saveOciArchive(store: Store, items: SaveItem[], dest: string, opts: { platform?: Platform; directory?: boolean } = {}): Promise<void> {
  // `directory`: the same layout as plain files (`--output type=oci,tar=false`)
  const sink = opts.directory ? new DirectoryWriter(dest) : new ArchiveWriter(dest);
  let images: LayoutImage[];
  try {
    images = [];
    for (const item of items) {
      const { top, blobs } = await imageClosure(store, item.descriptor, opts.platform);
      const entry: Descriptor = { ...top };
      if (item.ref) {
        const tag = tagOf(item.ref);
        entry.annotations = { [CONTAINERD_NAME_ANNOTATION]: item.ref, ...(tag ? { [OCI_REF_ANNOTATION]: tag } : {}) };
      }
      if (item.annotations && Object.keys(item.annotations).length) entry.annotations = { ...item.annotations, ...(entry.annotations ?? {}) };
      images.push({ entry, blobs });
    }
  } catch (e) {
    await sink.abort();
    throw e;
  }
  // verified while copied: a corrupted store blob fails the save instead of spreading
  await writeOciLayout(sink, images, (b) => store.openBlob(b.digest, { verify: 'once' }));
}

/** `-o type=oci,dest=FILE` (`tar=false`: the layout as a directory), in the compression the output asks for. */
export const ociExporter: Exporter<{ dest: string; tar?: boolean }> = {
  resolve: ({ dest, tar }) => ({
    name: 'oci',
    async export(src) {
      const desc = await src.image();
      await saveOciArchive(src.store, [{ ...(src.tags[0] ? { ref: src.tags[0] } : {}), descriptor: desc, ...(src.layoutAnnotations ? { annotations: src.layoutAnnotations } : {}) }], dest, { directory: tar === false });
    },
  }),
};
