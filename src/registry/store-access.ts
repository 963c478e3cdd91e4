import type { Digest } from '../image/digest.js';
import type { Image } from '../image/image.js';
import type { Descriptor, Platform } from '../image/types.js';
import type { BlobStore } from '../image/blob-store.js';
import type { BlobOrigin } from '../store/metadata.js';
import type { RefStore } from '../store/types.js';

export type { BlobOrigin };

/**
 * What pull and push need from a store. The blob-origin and image-reading
 * methods are optional so any BlobStore + RefStore works; kiln's Store has
 * them all.
 */
export interface RegistryStore extends BlobStore, RefStore {
  recordBlobOrigin?(digest: Digest, registry: string, repository: string): Promise<void>;
  blobOrigins?(digest: Digest): Promise<BlobOrigin[]>;
  imageFromDescriptor?(desc: Descriptor, opts?: { platform?: Platform }): Promise<Image>;
  /** Records the pulled image's diffID → blob pairs (reading an image records nothing). */
  recordLayers?(image: Image): Promise<void>;
}
