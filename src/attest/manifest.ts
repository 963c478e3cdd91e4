import { canonicalJSON } from '../image/canonical-json.js';
import { MediaType } from '../image/media-types.js';
import type { Digest } from '../image/digest.js';
import type { Descriptor, Manifest } from '../image/types.js';
import { IN_TOTO_MEDIA_TYPE, type Statement } from './in-toto.js';

/** Where attestation documents go: a blob writer (the store, in practice). */
export interface BlobSink {
  putBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }>;
}

export const ATTESTATION_REFERENCE_TYPE = 'attestation-manifest';
export const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';
export const REFERENCE_DIGEST_ANNOTATION = 'vnd.docker.reference.digest';
export const PREDICATE_TYPE_ANNOTATION = 'in-toto.io/predicate-type';

/** Is this index entry an attestation manifest (not a runnable image)? */
export function isAttestationDescriptor(d: Descriptor): boolean {
  return d.annotations?.[REFERENCE_TYPE_ANNOTATION] === ATTESTATION_REFERENCE_TYPE;
}

/**
 * Writes one attestation manifest for one image manifest, laid out exactly as
 * BuildKit does so `docker buildx imagetools inspect`, Docker Scout and
 * registries that understand attestations read it: each statement is a layer
 * of media type application/vnd.in-toto+json annotated with its predicate
 * type; the manifest's config is an OCI config for the unknown platform; the
 * index entry is `unknown/unknown` and points back at the image through
 * vnd.docker.reference.digest.
 */
export async function writeAttestationManifest(sink: BlobSink, image: Descriptor, statements: Statement[]): Promise<{ descriptor: Descriptor; manifest: Manifest }> {
  const layers: Descriptor[] = [];
  for (const s of statements) {
    const bytes = Buffer.from(canonicalJSON(s));
    const { digest, size } = await sink.putBytes(bytes);
    layers.push({ mediaType: IN_TOTO_MEDIA_TYPE, digest, size, annotations: { [PREDICATE_TYPE_ANNOTATION]: s.predicateType } });
  }
  const config = Buffer.from(canonicalJSON({ architecture: 'unknown', os: 'unknown', config: {}, rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) } }));
  const cfg = await sink.putBytes(config);
  const manifest: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, digest: cfg.digest, size: cfg.size },
    layers,
  };
  const bytes = Buffer.from(canonicalJSON(manifest));
  const m = await sink.putBytes(bytes);
  return {
    manifest,
    descriptor: {
      mediaType: MediaType.OCI_MANIFEST,
      digest: m.digest,
      size: m.size,
      annotations: { [REFERENCE_DIGEST_ANNOTATION]: image.digest, [REFERENCE_TYPE_ANNOTATION]: ATTESTATION_REFERENCE_TYPE },
      platform: { architecture: 'unknown', os: 'unknown' },
    },
  };
}
