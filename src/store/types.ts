import type { Descriptor } from '../image/types.js';

// the blob port is defined beside the image model, where layer/ and registry/ import it
export type { BlobStore, BlobVerify, BlobWriteExpectation, PartialDownload } from '../image/blob-store.js';

/** Named references kept in index.json as org.opencontainers.image.ref.name annotations. */
export interface RefStore {
  resolve(ref: string): Promise<Descriptor | undefined>;
  setRef(ref: string, desc: Descriptor): Promise<void>;
  removeRef(ref: string): Promise<boolean>;
  listRefs(): Promise<Array<{ ref: string; descriptor: Descriptor }>>;
}
