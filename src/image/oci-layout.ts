import type { Readable } from 'node:stream';
import { canonicalBytes } from './canonical-json.js';
import { digestHex, type Digest } from './digest.js';
import { MediaType } from './media-types.js';
import type { Descriptor, Index } from './types.js';

/**
 * The OCI image layout (image-spec `image-layout.md`): an `oci-layout` marker,
 * content-addressed `blobs/sha256/<hex>`, and `index.json` naming the images.
 * One definition serves the three places kiln writes layouts: OCI archives
 * (`-o type=oci`, `kiln save --format oci`) and local build caches
 * (`--cache-to type=local`) are written whole by `writeOciLayout`; the store
 * updates its own layout in place (one blob or one index.json rename at a
 * time, under its locks) with the same marker, index document and names.
 */
export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_LAYOUT_BYTES = canonicalBytes({ imageLayoutVersion: '1.0.0' });
export const OCI_INDEX_FILE = 'index.json';
/** The annotation that gives an index.json entry its name (a tag, or a full reference in kiln's store). */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** A blob's name inside a layout. */
export function layoutBlobPath(digest: Digest): string {
  return `blobs/sha256/${digestHex(digest)}`;
}

/** The index.json document listing `manifests`. */
export function layoutIndex(manifests: Descriptor[]): Index {
  return { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
}

/**
 * Where a layout's files go: a tar (an OCI archive), a directory replaced
 * whole, or a directory updated in place. Names are relative to the layout
 * root. `has` lets a sink that already holds a blob skip it.
 */
export interface LayoutSink {
  has?(name: string): Promise<boolean>;
  addBytes(name: string, bytes: Buffer): Promise<void>;
  addStream(name: string, size: number, src: Readable): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/** One index.json entry and the blobs it needs, in the order they are written (manifests after what they name). */
export interface LayoutImage {
  entry: Descriptor;
  blobs: Descriptor[];
}

/**
 * Writes a complete layout to `sink`: the marker, every blob once (opened
 * with `open`, which should verify what it reads), then index.json, so a
 * reader never finds an index naming a blob that is not there yet. On any
 * failure the sink is aborted.
 */
export async function writeOciLayout(sink: LayoutSink, images: LayoutImage[], open: (d: Descriptor) => Readable): Promise<void> {
  try {
    await sink.addBytes(OCI_LAYOUT_FILE, OCI_LAYOUT_BYTES);
    const written = new Set<Digest>();
    for (const { blobs } of images) {
      for (const b of blobs) {
        if (written.has(b.digest)) continue;
        written.add(b.digest);
        const name = layoutBlobPath(b.digest);
        if (sink.has && (await sink.has(name))) continue;
        await sink.addStream(name, b.size, open(b));
      }
    }
    await sink.addBytes(OCI_INDEX_FILE, Buffer.from(JSON.stringify(layoutIndex(images.map((i) => i.entry)))));
    await sink.finish();
  } catch (e) {
    await sink.abort();
    throw e;
  }
}
