import { lines } from './lines.js';
import type { Distro } from './types.js';

/** Parses os-release(5): KEY=value lines, values optionally quoted. */
export function parseOsRelease(text: string): Distro | undefined {
  const kv = new Map<string, string>();
  for (const line of lines(text)) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let v = m[2]!;
    if ((v.startsWith('"') && v.endsWith('"')) || (v.startsWith("'") && v.endsWith("'"))) v = v.slice(1, -1);
    kv.set(m[1]!, v.replace(/\\(.)/g, '$1'));
  }
  const id = kv.get('ID');
  if (!id) return undefined;
  const d: Distro = { id };
  const version = kv.get('VERSION_ID');
  if (version) d.versionId = version;
  const pretty = kv.get('PRETTY_NAME');
  if (pretty) d.prettyName = pretty;
  return d;
}

/** The purl `distro` qualifier: "debian-12", "alpine-3.19". */
export function distroQualifier(d: Distro | undefined): string | undefined {
  if (!d) return undefined;
  return d.versionId ? `${d.id}-${d.versionId}` : d.id;
}
