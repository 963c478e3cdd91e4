import { lines } from './lines.js';
import { purl } from './purl.js';
import type { FoundPackage } from './types.js';

/** PEP 503 normalisation, which purl's pypi type requires. */
export function normalisePypiName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** The headers kiln reads; others (Classifier, Requires-Dist, …: any number of them) are skipped. */
const HEADERS: ReadonlySet<string> = new Set(['Name', 'Version', 'License-Expression', 'License', 'Author', 'Author-email']);

/**
 * An installed distribution's METADATA (or PKG-INFO): RFC 822 style headers
 * up to the first blank line. License-Expression (PEP 639) wins over License.
 */
export function parsePythonMetadata(text: string, location: string): FoundPackage | undefined {
  const headers = new Map<string, string>();
  for (const line of lines(text)) {
    if (line.trim() === '') break;
    const i = line.indexOf(':');
    if (i <= 0 || line.startsWith(' ')) continue;
    const k = line.slice(0, i).trim();
    if (HEADERS.has(k) && !headers.has(k)) headers.set(k, line.slice(i + 1).trim());
  }
  const name = headers.get('Name');
  const version = headers.get('Version');
  if (!name || !version) return undefined;
  const pkg: FoundPackage = { kind: 'pypi', name, version, purl: purl({ type: 'pypi', name: normalisePypiName(name), version }), location };
  const lic = headers.get('License-Expression') ?? headers.get('License');
  if (lic && lic !== 'UNKNOWN') pkg.license = lic;
  const author = headers.get('Author') ?? headers.get('Author-email');
  if (author) pkg.supplier = author;
  return pkg;
}
