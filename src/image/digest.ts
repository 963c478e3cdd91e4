import { createHash, type Hash } from 'node:crypto';
import { KilnError } from '../errors/index.js';

/** `sha256:<64 hex>`; branded so a plain string is not mistaken for a verified digest. */
export type Digest = string & { readonly __digest: unique symbol };

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

export function isDigest(s: string): s is Digest {
  return DIGEST_RE.test(s);
}

export function parseDigest(s: string): Digest {
  if (!isDigest(s)) throw new KilnError('INVALID_REFERENCE', `invalid digest "${s}" (want sha256:<64 lowercase hex>)`);
  return s;
}

/** The hex part, which the store uses as a file name: checked here too, whatever the caller's type says, so no string from a document becomes a path. */
export function digestHex(d: Digest): string {
  if (!isDigest(d)) throw new KilnError('INVALID_REFERENCE', `invalid digest ${JSON.stringify(String(d)).slice(0, 200)} (want sha256:<64 lowercase hex>)`);
  return d.slice('sha256:'.length);
}

export function sha256(data: string | Uint8Array): Digest {
  return `sha256:${createHash('sha256').update(data).digest('hex')}` as Digest;
}

export function digestOfHash(h: Hash): Digest {
  return `sha256:${h.digest('hex')}` as Digest;
}
