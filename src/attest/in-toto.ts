import type { Digest } from '../image/digest.js';

export const IN_TOTO_MEDIA_TYPE = 'application/vnd.in-toto+json';
export const STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1';
export const PREDICATE_SPDX = 'https://spdx.dev/Document';
export const PREDICATE_SLSA_V02 = 'https://slsa.dev/provenance/v0.2';
export const PREDICATE_SLSA_V1 = 'https://slsa.dev/provenance/v1';

export interface Subject {
  name: string;
  digest: { sha256: string };
}

export interface Statement<P = unknown> {
  _type: typeof STATEMENT_V01;
  predicateType: string;
  subject: Subject[];
  predicate: P;
}

/** Statements are about the image manifest: its digest is the subject, named as BuildKit names it (a purl of the image). */
export function statement<P>(predicateType: string, subject: { name: string; digest: Digest }, predicate: P): Statement<P> {
  return {
    _type: STATEMENT_V01,
    predicateType,
    subject: [{ name: subject.name, digest: { sha256: subject.digest.replace(/^sha256:/, '') } }],
    predicate,
  };
}

/**
 * The subject name BuildKit writes: `pkg:docker/<repo>@<tag>?platform=<os/arch>`
 * for a tagged image, or just the platform-qualified type when untagged.
 */
export function subjectName(ref: string | undefined, platform: string): string {
  const q = `platform=${encodeURIComponent(platform)}`;
  if (!ref) return `pkg:docker/image?${q}`;
  const at = ref.lastIndexOf(':');
  const slash = ref.lastIndexOf('/');
  const [repo, tag] = at > slash ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, 'latest'];
  return `pkg:docker/${repo}@${tag}?${q}`;
}
