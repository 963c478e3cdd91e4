import type { Digest } from '../image/digest.js';
import type { Image } from '../image/image.js';
import type { Descriptor, Platform } from '../image/types.js';
import type { BlobStore, RefStore } from '../store/types.js';

/** A repository of some registry that holds a blob; pushes try to mount from there. */
export interface BlobOrigin {
  registry: string;
  repository: string;
}

/**
 * What pull and push need from a store. The blob-origin and image-reading
 * methods are optional so any BlobStore + RefStore works; kiln's Store has
 * them all.
 */
export interface RegistryStore extends BlobStore, RefStore {
  recordBlobOrigin?(digest: Digest, registry: string, repository: string): Promise<void>;
  blobOrigins?(digest: Digest): Promise<BlobOrigin[]>;
  imageFromDescriptor?(desc: Descriptor, opts?: { platform?: Platform }): Promise<Image>;
  /** Resumable downloads: bytes already received survive the process (see `downloadResumable`). */
  partialBlob?(digest: Digest): Promise<{ offset: number; path: string }>;
  commitPartialBlob?(digest: Digest, expectSize?: number, computed?: Digest): Promise<{ digest: Digest; size: number }>;
}
