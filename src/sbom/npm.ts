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

/**
 * Packages a lockfile (v2/v3 "packages" map, or v1 "dependencies") pins.
 * The root project itself ("" key) is not a dependency and is skipped.
 */
export function parsePackageLock(text: string, location: string): FoundPackage[] {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    return [];
  }
  if (!j || typeof j !== 'object') return [];
  const out: FoundPackage[] = [];
  const o = j as { packages?: Record<string, { version?: unknown; license?: unknown; name?: unknown; link?: unknown }>; dependencies?: Record<string, { version?: unknown }> };
  if (o.packages && typeof o.packages === 'object') {
    for (const [key, v] of Object.entries(o.packages)) {
      if (key === '' || !v || typeof v !== 'object' || v.link === true) continue;
      const idx = key.lastIndexOf('node_modules/');
      const name = typeof v.name === 'string' ? v.name : idx >= 0 ? key.slice(idx + 'node_modules/'.length) : undefined;
      if (!name || typeof v.version !== 'string') continue;
      const pkg: FoundPackage = { kind: 'npm', name, version: v.version, purl: npmPurl(name, v.version), location };
      const lic = licenseOf(v.license);
      if (lic) pkg.license = lic;
      out.push(pkg);
    }
    return out;
  }
  const walk = (deps: Record<string, { version?: unknown; dependencies?: unknown }> | undefined) => {
    for (const [name, v] of Object.entries(deps ?? {})) {
      if (typeof v?.version === 'string' && !v.version.startsWith('file:')) out.push({ kind: 'npm', name, version: v.version, purl: npmPurl(name, v.version), location });
      if (v && typeof v.dependencies === 'object') walk(v.dependencies as Record<string, { version?: unknown }>);
    }
  };
  walk(o.dependencies);
  return out;
}
