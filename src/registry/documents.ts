import { KilnError } from '../errors/index.js';
import { isDigest, type Digest } from '../image/digest.js';
import { isIndexMediaType, MAX_INDEX_DEPTH, MAX_MANIFEST_BYTES } from '../image/media-types.js';
import type { Descriptor, Index } from '../image/types.js';
import type { FetchedManifest, RegistryClient } from './client.js';
import type { Reference } from './reference.js';

/** Distinct manifests and indexes one pull or copy fetches (the top one included). */
const MAX_DOCUMENTS = 1000;

/**
 * Their bytes added up: all of them are held in memory until the pull writes
 * them to the store (after the blobs) or the copy puts them to the destination.
 */
const MAX_DOCUMENTS_BYTES = 64 * 1024 * 1024;

/**
 * Every document under `top` (which may be an index or a single manifest),
 * each fetched once however often indexes list it, children before the index
 * listing them and `top` last (the order a registry accepts them in). Each
 * index's children are checked and counted before any of them is fetched, so
 * an index over the limits costs no further requests; a child's bytes must
 * have its descriptor's size, so the sizes counted are the bytes held.
 */
export async function fetchDocumentTree(client: RegistryClient, r: Reference, top: FetchedManifest): Promise<FetchedManifest[]> {
  const seen = new Set<Digest>([top.digest]);
  let bytes = top.bytes.length;
  const out: FetchedManifest[] = [];

  const visit = async (doc: FetchedManifest, depth: number): Promise<void> => {
    if (isIndexMediaType(doc.mediaType)) {
      if (depth > MAX_INDEX_DEPTH) {
        throw new KilnError('REGISTRY', `${r.familiar()}: index ${doc.digest} is nested ${depth} indexes deep, over kiln's limit of ${MAX_INDEX_DEPTH}`);
      }
      const fresh: Descriptor[] = [];
      for (const d of indexEntries(doc, r)) {
        checkDocumentSize(d, 'manifest', r);
        if (seen.has(d.digest)) continue;
        seen.add(d.digest);
        fresh.push(d);
        bytes += d.size;
      }
      if (seen.size > MAX_DOCUMENTS) {
        throw new KilnError('REGISTRY', `${r.familiar()}: lists more than ${MAX_DOCUMENTS} manifests and indexes, over kiln's limit of ${MAX_DOCUMENTS} per pull or copy`);
      }
      if (bytes > MAX_DOCUMENTS_BYTES) {
        throw new KilnError('REGISTRY', `${r.familiar()}: its manifests and indexes add up to ${bytes} bytes, over kiln's limit of ${MAX_DOCUMENTS_BYTES / (1024 * 1024)} MiB per pull or copy`);
      }
      for (const d of fresh) {
        const child = await client.getManifestFrom(doc.endpoint, r, d.digest);
        checkFetchedSize(child, d, r);
        await visit(child, depth + 1);
      }
    }
    out.push(doc);
  };
  await visit(top, 1);
  return out;
}

/** The entries of a fetched index; a `manifests` that is not a list is refused rather than iterated. */
export function indexEntries(doc: FetchedManifest, r: Reference): Descriptor[] {
  const index = parseJSON<Partial<Index>>(doc, r);
  if (!Array.isArray(index.manifests)) throw new KilnError('REGISTRY', `${r.familiar()}: index ${doc.digest} has no "manifests" list`);
  return index.manifests;
}

/** A document fetched by a descriptor must be as long as the descriptor says (the digest is checked by the client). */
export function checkFetchedSize(doc: FetchedManifest, d: Descriptor, r: Reference): void {
  if (doc.bytes.length !== d.size) {
    throw new KilnError('SIZE_MISMATCH', `${r.familiar()}: manifest ${d.digest} is ${doc.bytes.length} bytes, its descriptor says ${d.size}`);
  }
}

/**
 * A descriptor from the registry names a file in the store (blobs/sha256/<hex>,
 * tmp/partial/<hex>) and a byte count to expect: only sha256 digests of 64
 * lowercase hex characters and whole non-negative sizes are accepted, so a
 * hostile manifest cannot point a download at a path outside the store.
 */
export function checkDescriptor(d: Descriptor | undefined, what: string, r: Reference): void {
  const digest: unknown = d?.digest;
  if (typeof digest !== 'string' || !isDigest(digest)) {
    throw new KilnError('REGISTRY', `${r.familiar()}: a ${what} descriptor has digest ${JSON.stringify(digest)}; kiln accepts only sha256:<64 lowercase hex>`);
  }
  const size: unknown = d!.size;
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new KilnError('REGISTRY', `${r.familiar()}: ${what} ${digest} has an invalid size ${JSON.stringify(size)}`);
  }
}

/** Manifests, indexes and configs are held in memory whole: their descriptors may not claim more than MAX_MANIFEST_BYTES. */
export function checkDocumentSize(d: Descriptor, what: string, r: Reference): void {
  checkDescriptor(d, what, r);
  if (typeof d.size === 'number' && d.size > MAX_MANIFEST_BYTES) {
    throw new KilnError('REGISTRY', `${r.familiar()}: ${what} ${d.digest} is ${d.size} bytes, over kiln's limit of ${MAX_MANIFEST_BYTES / (1024 * 1024)} MiB for ${what}s`);
  }
}

export function parseJSON<T>(m: FetchedManifest, r: Reference): T {
  try {
    return JSON.parse(m.bytes.toString('utf8')) as T;
  } catch {
    throw new KilnError('REGISTRY', `${r.familiar()}: manifest ${m.digest} is not valid JSON`);
  }
}
