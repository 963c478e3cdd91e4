import { lines } from './lines.js';
import { purl } from './purl.js';
import type { FoundPackage } from './types.js';

/**
 * Splits a deb822 file (dpkg's status database, status.d entries) into
 * paragraphs of fields, one paragraph at a time. Continuation lines (starting
 * with a space or tab) belong to the previous field. Only the `fields` asked
 * for are kept: a paragraph of a million made-up fields, or a field of a
 * million continuation lines, costs no more memory than its text.
 */
export function* parseDeb822(text: string, fields: ReadonlySet<string>): Generator<Map<string, string>> {
  let cur = new Map<string, string>();
  let last: string | undefined;
  // the kept field being read, as offsets into `text`: continuation lines extend it without concatenating strings
  let open: { name: string; start: number; end: number } | undefined;
  const close = () => {
    // each line trimmed and the lines joined with '\n' (lines inside a field are never blank: a blank line ends the paragraph)
    if (open) cur.set(open.name, text.slice(open.start, open.end).trim().replace(/\s*\n\s*/g, '\n'));
    open = undefined;
  };
  let at = 0;
  for (const line of lines(text)) {
    const lineStart = at;
    at += line.length + 1;
    if (line.trim() === '') {
      close();
      if (cur.size) yield cur;
      cur = new Map();
      last = undefined;
      continue;
    }
    if ((line.startsWith(' ') || line.startsWith('\t')) && last) {
      if (open) open.end = lineStart + line.length;
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    close();
    last = line.slice(0, i).trim();
    if (fields.has(last)) open = { name: last, start: lineStart + i + 1, end: lineStart + line.length };
  }
  close();
  if (cur.size) yield cur;
}

/** The fields of a status paragraph kiln reads. */
const DPKG_FIELDS: ReadonlySet<string> = new Set(['Package', 'Version', 'Status', 'Architecture', 'Source', 'Maintainer']);

/**
 * Installed packages from dpkg's status file, one at a time (the scan stops
 * reading at its package limit). Only packages whose Status says "installed"
 * count: removed packages keep a paragraph with their config files
 * ("deinstall ok config-files") and are not in the image.
 */
export function* parseDpkgStatus(text: string, opts: { location: string; distro?: string; namespace?: string }): Generator<FoundPackage> {
  for (const p of parseDeb822(text, DPKG_FIELDS)) {
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
        qualifiers: { arch, distro: opts.distro, upstream: source ? source.split(' ', 1)[0] : undefined },
      }),
      location: opts.location,
    };
    if (arch) pkg.arch = arch;
    const maint = p.get('Maintainer');
    if (maint) pkg.supplier = maint;
    yield pkg;
  }
}
