import { KilnError } from '../errors/index.js';
import { indexShape, manifestShape, objectShape, type Shape } from '../image/document-shapes.js';
import { isIndexMediaType } from '../image/media-types.js';
import { formatPlatform } from '../image/platform.js';
import type { Descriptor } from '../image/types.js';
import { isAttestationDescriptor, PREDICATE_TYPE_ANNOTATION, REFERENCE_DIGEST_ANNOTATION } from './manifest.js';

/** Reads a stored document by digest, checked against a shape (the store's readJSON). */
export interface JsonReader {
  readJSON<T>(digest: Descriptor['digest'], shape: Shape<T>): Promise<T>;
}

/** The attestations an index holds for one of its images, each statement read and parsed. */
export interface ImageAttestations {
  platform: string;
  /** The image manifest they are about. */
  digest: string;
  /** The attestation manifest. */
  manifest: string;
  statements: Array<{ predicateType: string; digest: string; size: number; statement: Record<string, unknown> }>;
}

/** A statement is a small JSON document; this bounds what a hostile image can make `inspect` read into memory. */
const MAX_STATEMENT_BYTES = 64 << 20;

/**
 * The attestation manifests of an image index (BuildKit's layout: an
 * `unknown/unknown` manifest per image, pointing back at it through
 * `vnd.docker.reference.digest`), with their in-toto statements. An image
 * manifest, or an index without attestations, has none.
 */
export async function readAttestations(store: JsonReader, top: Descriptor): Promise<ImageAttestations[]> {
  if (!isIndexMediaType(top.mediaType)) return [];
  const index = await store.readJSON(top.digest, indexShape);
  const images = new Map(index.manifests.filter((m) => !isAttestationDescriptor(m)).map((m) => [m.digest as string, m]));
  const out: ImageAttestations[] = [];
  for (const att of index.manifests.filter(isAttestationDescriptor)) {
    const subject = att.annotations?.[REFERENCE_DIGEST_ANNOTATION] ?? '';
    const image = images.get(subject);
    const manifest = await store.readJSON(att.digest, manifestShape);
    const statements: ImageAttestations['statements'] = [];
    for (const l of manifest.layers) {
      if (l.size > MAX_STATEMENT_BYTES) throw new KilnError('UNSUPPORTED', `attestation ${l.digest} of ${att.digest} is ${l.size} bytes, over the ${MAX_STATEMENT_BYTES}-byte limit`);
      const statement = await store.readJSON(l.digest, (v) => objectShape(v, `statement ${l.digest}`));
      statements.push({ predicateType: l.annotations?.[PREDICATE_TYPE_ANNOTATION] ?? (typeof statement['predicateType'] === 'string' ? statement['predicateType'] : ''), digest: l.digest, size: l.size, statement });
    }
    out.push({ platform: image?.platform ? formatPlatform(image.platform) : 'unknown', digest: subject, manifest: att.digest, statements });
  }
  return out;
}
