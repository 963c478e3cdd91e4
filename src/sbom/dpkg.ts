import { purl } from './purl.js';
import type { FoundPackage } from './types.js';

/**
 * Splits a deb822 file (dpkg's status database, status.d entries) into
 * paragraphs of fields. Continuation lines (starting with a space or tab)
 * belong to the previous field.
 */
export function parseDeb822(text: string): Array<Map<string, string>> {
  const out: Array<Map<string, string>> = [];
  let cur = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur.size) out.push(cur);
      cur = new Map();
      last = undefined;
      continue;
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      cur.set(last, `${cur.get(last)}\n${line.trim()}`);
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    last = line.slice(0, i).trim();
    cur.set(last, line.slice(i + 1).trim());
  }
  if (cur.size) out.push(cur);
  return out;
}

/**
 * Installed packages from dpkg's status file. Only packages whose Status
 * says "installed" count: removed packages keep a paragraph with their
 * config files ("deinstall ok config-files") and are not in the image.
 */
export function parseDpkgStatus(text: string, opts: { location: string; distro?: string; namespace?: string }): FoundPackage[] {
  const pkgs: FoundPackage[] = [];
  for (const p of parseDeb822(text)) {
    const name = p.get('Package');
    const version = p.get('Version');
    if (!name || !version) continue;
    const status = p.get('Status');
    if (status !== undefined && !/\binstalled$/.test(status)) continue;
    const arch = p.get('Architecture');
    const source = p.get('Source');
    const pkg: FoundPackage = {
      kind: 'deb',
      name,
      version,
      purl: purl({
        type: 'deb',
        namespace: opts.namespace ?? 'debian',
        name,
        version,
        qualifiers: { arch, distro: opts.distro, upstream: source ? source.split(' ')[0] : undefined },
      }),
      location: opts.location,
    };
    if (arch) pkg.arch = arch;
    const maint = p.get('Maintainer');
    if (maint) pkg.supplier = maint;
    pkgs.push(pkg);
  }
  return pkgs;
}
