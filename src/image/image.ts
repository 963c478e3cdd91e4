import type { Readable } from 'node:stream';
import type { Digest } from './digest.js';
import type { Descriptor, ImageConfig, Manifest } from './types.js';

/**
 * A layer as go-containerregistry models it: both digests plus both views of
 * the bytes. `open` gives the blob as stored (compressed); `openUncompressed`
 * the tar whose sha256 is `diffID`.
 */
export interface Layer {
  readonly digest: Digest;
  readonly diffID: Digest;
  readonly size: number;
  readonly mediaType: string;
  /** The descriptor as it appears in the manifest. */
  readonly descriptor: Descriptor;
  open(): Readable;
  openUncompressed(): Readable;
}

/** An image: its manifest, its config and its layers (bottom first). Values are never edited in place. */
export interface Image {
  /** Descriptor of the manifest (digest of its exact bytes). */
  readonly descriptor: Descriptor;
  readonly manifest: Manifest;
  readonly config: ImageConfig;
  readonly configDescriptor: Descriptor;
  readonly layers: readonly Layer[];
}

/** A layer known by its blob descriptor and diffID, before it is wrapped by a store. */
export interface LayerRef {
  descriptor: Descriptor;
  diffID: Digest;
}
