import { redactUri } from '../attest/provenance.js';
import { isoSeconds } from '../image/timestamp.js';

export const CREATED_ANNOTATION = 'org.opencontainers.image.created';
export const SOURCE_ANNOTATION = 'org.opencontainers.image.source';
export const REVISION_ANNOTATION = 'org.opencontainers.image.revision';

/**
 * `--default-annotations`: the OCI annotations a build can state as facts.
 * `created` is RFC 3339 in UTC without fractions, as BuildKit's OCI exporter
 * writes it, from SOURCE_DATE_EPOCH when set (so a reproducible build stays
 * byte-identical) else the build's start. A git context adds its URL (no
 * credentials, no `#ref:dir` fragment) and the commit it built.
 */
export function defaultAnnotations(sourceDateEpoch: number | undefined, startedMs: number, origin: { uri: string; digest: Record<string, string> } | undefined): Record<string, string> {
  const when = sourceDateEpoch !== undefined ? sourceDateEpoch * 1000 : startedMs;
  const out: Record<string, string> = { [CREATED_ANNOTATION]: isoSeconds(new Date(when)) };
  const commit = origin?.digest['sha1'];
  if (origin && commit) {
    out[SOURCE_ANNOTATION] = redactUri(origin.uri).replace(/#.*$/, '');
    out[REVISION_ANNOTATION] = commit;
  }
  return out;
}
