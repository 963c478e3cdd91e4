import { KilnError } from '../errors/index.js';
import { sha256, type Digest } from '../image/digest.js';
import { MediaType } from '../image/media-types.js';
import type { Descriptor, Manifest } from '../image/types.js';
import type { BlobSource, RegistryClient } from '../registry/client.js';
import type { Reference } from '../registry/reference.js';
import {
  payloadBytes,
  SIGNATURE_ANNOTATION,
  signatureConfig,
  signatureManifest,
  signatureTag,
  signPayload,
  SIMPLE_SIGNING_MEDIA_TYPE,
  verifyPayload,
  type SimpleSigningPayload,
} from './simple-signing.js';
import type { KeyObject } from 'node:crypto';

/** A signature payload or a signature manifest is a few hundred bytes; this bounds what a hostile registry can make kiln read. */
const MAX_PAYLOAD = 1 << 20;

async function readSmallBlob(client: RegistryClient, ref: Reference, desc: Descriptor): Promise<Buffer> {
  if (desc.size > MAX_PAYLOAD) throw new KilnError('REGISTRY', `signature blob ${desc.digest} of ${ref.name} is ${desc.size} bytes, over the ${MAX_PAYLOAD}-byte limit`);
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of client.blob(ref, desc)) {
    n += chunk.length;
    if (n > MAX_PAYLOAD) throw new KilnError('REGISTRY', `signature blob ${desc.digest} of ${ref.name} exceeds ${MAX_PAYLOAD} bytes`);
    parts.push(Buffer.from(chunk));
  }
  const bytes = Buffer.concat(parts);
  if (sha256(bytes) !== desc.digest) throw new KilnError('DIGEST_MISMATCH', `signature blob of ${ref.name}: content does not match ${desc.digest}`);
  return bytes;
}

function bytesSource(bytes: Buffer): BlobSource {
  return async function* (start, end) {
    yield bytes.subarray(start, end);
  };
}

async function existingSignatures(client: RegistryClient, sigRef: Reference): Promise<Manifest | undefined> {
  const head = await client.headManifest(sigRef);
  if (!head) return undefined;
  const m = await client.getManifest(sigRef, { forPull: false });
  if (m.bytes.length > MAX_PAYLOAD) throw new KilnError('REGISTRY', `signature manifest ${sigRef.toString()} is too large`);
  return JSON.parse(m.bytes.toString('utf8')) as Manifest;
}

/** The digest `ref` names in the registry (its manifest or index), so the signature binds to exact bytes. */
export async function resolveDigest(client: RegistryClient, ref: Reference): Promise<Digest> {
  if (ref.digest) return ref.digest;
  const d = await client.headManifest(ref);
  if (!d) throw new KilnError('NOT_FOUND', `${ref.toString()}: no such image in the registry`);
  return d.digest;
}

/**
 * Signs the image `ref` points at, as `cosign sign --key` does: a simple-signing
 * payload naming the repository and manifest digest, signed with ECDSA P-256,
 * stored as a layer of the manifest tagged `sha256-<hex>.sig` in the same
 * repository. Earlier signatures stay (a new layer is appended, an identical
 * one is not added twice).
 */
export async function signImage(client: RegistryClient, ref: Reference, key: KeyObject, opts: { annotations?: Record<string, string> } = {}): Promise<{ digest: Digest; signatureRef: string }> {
  const digest = await resolveDigest(client, ref);
  const payload = payloadBytes(ref.name, digest, opts.annotations);
  const signature = signPayload(payload, key);
  const layer: Descriptor = { mediaType: SIMPLE_SIGNING_MEDIA_TYPE, size: payload.length, digest: sha256(payload), annotations: { [SIGNATURE_ANNOTATION]: signature } };
  const sigRef = ref.withTag(signatureTag(digest));
  const prior = await existingSignatures(client, sigRef);
  const layers = (prior?.layers ?? []).filter((l) => !(l.digest === layer.digest && l.annotations?.[SIGNATURE_ANNOTATION] === signature));
  layers.push(layer);
  const config = signatureConfig(layers);
  const manifest = signatureManifest(layers, config);
  await client.pushBlob(sigRef, layer, bytesSource(payload));
  await client.pushBlob(sigRef, manifest.config, bytesSource(config));
  await client.putManifest(sigRef, sigRef.tag!, Buffer.from(JSON.stringify(manifest)), MediaType.OCI_MANIFEST);
  return { digest, signatureRef: sigRef.toString() };
}

export interface VerifiedSignature {
  payload: SimpleSigningPayload;
  signature: string;
}

/**
 * Verifies `ref` as `cosign verify --key` does: at least one signature in the
 * `.sig` manifest must verify with the key AND name exactly the digest the
 * reference resolves to now and the same repository. A manifest pushed over the
 * tag after signing, or a payload edited in the registry, fails.
 */
export async function verifyImage(client: RegistryClient, ref: Reference, key: KeyObject): Promise<{ digest: Digest; signatures: VerifiedSignature[] }> {
  const digest = await resolveDigest(client, ref);
  const sigRef = ref.withTag(signatureTag(digest));
  const manifest = await existingSignatures(client, sigRef);
  if (!manifest) throw new KilnError('NOT_FOUND', `${ref.toString()}: no signatures found for ${digest}`);
  const good: VerifiedSignature[] = [];
  const problems: string[] = [];
  for (const l of manifest.layers ?? []) {
    const signature = l.annotations?.[SIGNATURE_ANNOTATION];
    if (l.mediaType !== SIMPLE_SIGNING_MEDIA_TYPE || !signature) continue;
    const payload = await readSmallBlob(client, sigRef, l);
    if (!verifyPayload(payload, signature, key)) {
      problems.push('signature does not verify with the key');
      continue;
    }
    let p: SimpleSigningPayload;
    try {
      p = JSON.parse(payload.toString('utf8')) as SimpleSigningPayload;
    } catch {
      problems.push('payload is not JSON');
      continue;
    }
    if (p.critical?.image?.['docker-manifest-digest'] !== digest) {
      problems.push(`payload signs ${p.critical?.image?.['docker-manifest-digest']}, the image is ${digest}`);
      continue;
    }
    if (p.critical?.identity?.['docker-reference'] !== ref.name) {
      problems.push(`payload names ${p.critical?.identity?.['docker-reference']}, not ${ref.name}`);
      continue;
    }
    good.push({ payload: p, signature });
  }
  if (good.length === 0) throw new KilnError('DIGEST_MISMATCH', `${ref.toString()}: no valid signature for ${digest}${problems.length ? ` (${[...new Set(problems)].join('; ')})` : ''}`);
  return { digest, signatures: good };
}
