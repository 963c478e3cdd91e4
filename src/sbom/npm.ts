import { purl } from './purl.js';
import type { FoundPackage } from './types.js';

function npmPurl(name: string, version: string): string {
  if (name.startsWith('@') && name.includes('/')) {
    const [scope, bare] = name.split('/', 2) as [string, string];
    return purl({ type: 'npm', namespace: scope, name: bare, version });
  }
  return purl({ type: 'npm', name, version });
}

function licenseOf(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && 'type' in v && typeof v.type === 'string') return (v as { type: string }).type;
  return undefined;
}

/** One installed package from node_modules/<name>/package.json. */
export function parsePackageJson(text: string, location: string): FoundPackage | undefined {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!j || typeof j !== 'object') return undefined;
  const o = j as Record<string, unknown>;
  if (typeof o.name !== 'string' || typeof o.version !== 'string') return undefined;
  const pkg: FoundPackage = { kind: 'npm', name: o.name, version: o.version, purl: npmPurl(o.name, o.version), location };
  const lic = licenseOf(o.license);
  if (lic) pkg.license = lic;
  return pkg;
}

type LockEntry = { version?: unknown; license?: unknown; name?: unknown; link?: unknown; dependencies?: unknown };

/**
 * Packages a lockfile (v2/v3 "packages" map, or v1 "dependencies") pins, one
 * at a time: the scan stops reading at its package limit. The root project
 * itself ("" key) is not a dependency and is skipped.
 */
export function* parsePackageLock(text: string, location: string): Generator<FoundPackage> {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return;
  }
  if (!j || typeof j !== 'object') return;
  const o = j as { packages?: Record<string, LockEntry>; dependencies?: unknown };
  if (o.packages && typeof o.packages === 'object') {
    for (const [key, v] of Object.entries(o.packages)) {
      if (key === '' || !v || typeof v !== 'object' || v.link === true) continue;
      const idx = key.lastIndexOf('node_modules/');
      const name = typeof v.name === 'string' ? v.name : idx >= 0 ? key.slice(idx + 'node_modules/'.length) : undefined;
      if (!name || typeof v.version !== 'string') continue;
      const pkg: FoundPackage = { kind: 'npm', name, version: v.version, purl: npmPurl(name, v.version), location };
      const lic = licenseOf(v.license);
      if (lic) pkg.license = lic;
      yield pkg;
    }
    return;
  }
  // v1 nests each package's own dependencies inside it, as deep as node_modules went. The walk keeps
  // its own stack (one iterator per level, so the order is still depth first) instead of recursing:
  // a lockfile nested 200,000 deep overflowed the call stack. The stack holds at most one entry per
  // level of the parsed document, and every entry is visited once.
  const levels: Array<Iterator<[string, unknown]>> = [];
  const enter = (deps: unknown) => {
    if (deps && typeof deps === 'object') levels.push(Object.entries(deps)[Symbol.iterator]());
  };
  enter(o.dependencies);
  while (levels.length) {
    const next = levels[levels.length - 1]!.next();
    if (next.done) {
      levels.pop();
      continue;
    }
    const [name, v] = next.value;
    if (!v || typeof v !== 'object') continue;
    const e = v as LockEntry;
    if (typeof e.version === 'string' && !e.version.startsWith('file:')) yield { kind: 'npm', name, version: e.version, purl: npmPurl(name, e.version), location };
    enter(e.dependencies);
  }
}
