import { createHash } from 'node:crypto';
import type { Distro, FoundPackage } from './types.js';
import { isoSeconds } from '../image/timestamp.js';

/** The subset of SPDX 2.3 JSON kiln writes (https://spdx.github.io/spdx-spec/v2.3/). */
export interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  packages: SpdxPackage[];
  relationships: Array<{ spdxElementId: string; relationshipType: string; relatedSpdxElement: string }>;
}

export interface SpdxPackage {
  name: string;
  SPDXID: string;
  versionInfo: string;
  supplier: string;
  downloadLocation: 'NOASSERTION';
  filesAnalyzed: false;
  licenseConcluded: 'NOASSERTION';
  licenseDeclared: string;
  sourceInfo: string;
  externalRefs: Array<{ referenceCategory: 'PACKAGE-MANAGER'; referenceType: 'purl'; referenceLocator: string }>;
  primaryPackagePurpose?: string;
}

/**
 * A licence string as the package declares it becomes licenseDeclared only
 * when it reads as an SPDX expression (ids joined by AND/OR/WITH, brackets);
 * anything else ("BSD-like", "SEE LICENSE IN …") would make the document
 * invalid, so it is recorded as NOASSERTION.
 */
export function spdxLicense(declared: string | undefined): string {
  if (!declared) return 'NOASSERTION';
  const tokens = declared.replace(/[()]/g, ' ').split(/\s+/).filter(Boolean);
  if (tokens.length === 0) return 'NOASSERTION';
  const ok = tokens.every((t, i) => (i % 2 === 1 ? /^(AND|OR|WITH)$/.test(t) : /^(LicenseRef-)?[A-Za-z0-9][A-Za-z0-9.+-]*$/.test(t)));
  return ok && tokens.length % 2 === 1 ? declared.trim() : 'NOASSERTION';
}

function spdxId(p: FoundPackage): string {
  const h = createHash('sha256').update(`${p.purl}\0${p.location}`).digest('hex').slice(0, 16);
  return `SPDXRef-Package-${p.kind}-${p.name.replace(/[^A-Za-z0-9.-]/g, '-')}-${h}`;
}

function supplier(s: string | undefined): string {
  if (!s) return 'NOASSERTION';
  // SPDX wants "Person: name (email)" or "Organization: …"; a maintainer line reads as a person
  return `Person: ${s.replace(/[\r\n]+/g, ' ').trim()}`;
}

/**
 * Writes an SPDX 2.3 document describing the packages of one image. Every
 * field is derived from the inputs (no random namespace, the creation time is
 * given), so the same image and SOURCE_DATE_EPOCH give the same bytes.
 */
export function spdxDocument(opts: { name: string; created: Date; toolVersion: string; packages: FoundPackage[]; distro?: Distro }): SpdxDocument {
  const packages: SpdxPackage[] = [...opts.packages]
    .sort((a, b) => (a.purl < b.purl ? -1 : a.purl > b.purl ? 1 : a.location < b.location ? -1 : a.location > b.location ? 1 : 0))
    .map((p) => ({
      name: p.name,
      SPDXID: spdxId(p),
      versionInfo: p.version,
      supplier: supplier(p.supplier),
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: spdxLicense(p.license),
      sourceInfo: `acquired package info from ${p.location}`,
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
    }));
  const ids = new Set<string>();
  for (const p of packages) {
    // the same purl found in two places keeps two entries with distinct ids
    let id = p.SPDXID;
    for (let n = 2; ids.has(id); n++) id = `${p.SPDXID}-${n}`;
    p.SPDXID = id;
    ids.add(id);
  }
  const content = createHash('sha256').update(opts.name).update('\0').update(packages.map((p) => p.SPDXID).join('\n')).digest('hex');
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: opts.name,
    documentNamespace: `urn:kiln:spdx:${content}`,
    creationInfo: { created: isoSeconds(opts.created), creators: [`Tool: kiln-${opts.toolVersion}`] },
    packages,
    relationships: packages.map((p) => ({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: p.SPDXID })),
  };
}
