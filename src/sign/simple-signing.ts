import { createSign, createVerify, type KeyObject } from 'node:crypto';
import { sha256 } from '../image/digest.js';
import type { Digest } from '../image/digest.js';
import { MediaType } from '../image/media-types.js';
import type { Descriptor, Manifest } from '../image/types.js';

/** cosign's names, kept byte for byte so cosign verifies kiln's signatures and the reverse. */
export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
export const SIGNATURE_TYPE = 'cosign container image signature';

export interface SimpleSigningPayload {
  critical: {
    identity: { 'docker-reference': string };
    image: { 'docker-manifest-digest': Digest };
    type: string;
  };
  optional: Record<string, unknown> | null;
}

/** The tag cosign stores signatures of `digest` under: `sha256-<hex>.sig`. */
export function signatureTag(digest: Digest): string {
  return `${digest.replace(':', '-')}.sig`;
}

export function payloadBytes(repository: string, digest: Digest, annotations?: Record<string, string>): Buffer {
  const p: SimpleSigningPayload = {
    critical: { identity: { 'docker-reference': repository }, image: { 'docker-manifest-digest': digest }, type: SIGNATURE_TYPE },
    optional: annotations && Object.keys(annotations).length ? annotations : null,
  };
  return Buffer.from(JSON.stringify(p));
}

/** ECDSA over SHA-256 of the payload, DER-encoded, base64: what cosign puts in the signature annotation. */
export function signPayload(payload: Buffer, key: KeyObject): string {
  return createSign('sha256').update(payload).sign(key).toString('base64');
}

export function verifyPayload(payload: Buffer, signature: string, key: KeyObject): boolean {
  try {
    return createVerify('sha256').update(payload).verify(key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

/** The config blob cosign writes for a signature manifest: one diff_id per signature layer. */
export function signatureConfig(layers: Descriptor[]): Buffer {
  return Buffer.from(JSON.stringify({
    architecture: '',
    created: '0001-01-01T00:00:00Z',
    history: [{ created: '0001-01-01T00:00:00Z' }],
    os: '',
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
    config: {},
  }));
}

export function signatureManifest(layers: Descriptor[], config: Buffer): Manifest {
  return {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, size: config.length, digest: sha256(config) },
    layers,
  };
}
