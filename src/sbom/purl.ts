/**
 * Package URLs, as the purl specification spells them: type, optional
 * namespace, name, version, sorted qualifiers, each component percent-encoded.
 * SBOM consumers (Grype, Trivy, Dependency-Track) match vulnerabilities on
 * these strings, so the encoding must be the specification's, not ours.
 */
export function purl(parts: { type: string; namespace?: string; name: string; version?: string; qualifiers?: Record<string, string | undefined> }): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%3A/g, ':');
  let out = `pkg:${parts.type}/`;
  if (parts.namespace) out += `${parts.namespace.split('/').map(enc).join('/')}/`;
  out += enc(parts.name);
  if (parts.version) out += `@${enc(parts.version)}`;
  const q = Object.entries(parts.qualifiers ?? {})
    .filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (q.length) out += `?${q.map(([k, v]) => `${k}=${enc(v)}`).join('&')}`;
  return out;
}
