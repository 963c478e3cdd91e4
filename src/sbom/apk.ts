import { lines } from './lines.js';
import { purl } from './purl.js';
import type { FoundPackage } from './types.js';

/**
 * Alpine's installed database (/lib/apk/db/installed): blank-line separated
 * records of one-letter keys. P = name, V = version, A = arch, L = licence,
 * m = maintainer, o = origin (source package). One package at a time: the
 * scan stops reading at its package limit.
 */
export function* parseApkInstalled(text: string, opts: { location: string; distro?: string }): Generator<FoundPackage> {
  let rec = new Map<string, string>();
  const record = (): FoundPackage | undefined => {
    const name = rec.get('P');
    const version = rec.get('V');
    if (name && version) {
      const arch = rec.get('A');
      const pkg: FoundPackage = {
        kind: 'apk',
        name,
        version,
        purl: purl({ type: 'apk', namespace: 'alpine', name, version, qualifiers: { arch, distro: opts.distro, upstream: rec.get('o') } }),
        location: opts.location,
      };
      if (arch) pkg.arch = arch;
      const lic = rec.get('L');
      if (lic) pkg.license = lic;
      const m = rec.get('m');
      if (m) pkg.supplier = m;
      return pkg;
    }
    return undefined;
  };
  for (const line of lines(text)) {
    if (line.trim() === '') {
      const pkg = record();
      rec = new Map();
      if (pkg) yield pkg;
      continue;
    }
    if (line[1] !== ':') continue;
    // a package has many F:/R: lines (files); only the first of each header key matters
    if (!rec.has(line[0]!)) rec.set(line[0]!, line.slice(2));
  }
  const pkg = record();
  if (pkg) yield pkg;
}
