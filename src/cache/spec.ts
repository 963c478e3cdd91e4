import { KilnError } from '../errors/index.js';
import type { Compression } from '../layer/types.js';
import { specFields } from '../spec/csv.js';

/**
 * `--cache-from` / `--cache-to` as buildx spells them, parsed and checked
 * once. Each backend (cache/remote/registry.ts, local.ts, inline.ts) takes
 * the spec of its type.
 */
export type CacheImportSpec = { type: 'registry'; ref: string } | { type: 'local'; src: string; tag?: string };
/** Layer compression of an exported cache (`compression=`, `compression-level=`); default: the image's. */
export interface CacheCompression {
  compression?: Compression;
  compressionLevel?: number;
}
export type CacheExportSpec =
  | ({ type: 'registry'; ref: string; mode: 'min' | 'max'; cacheMounts: boolean } & CacheCompression)
  | ({ type: 'local'; dest: string; mode: 'min' | 'max'; cacheMounts: boolean; tag?: string } & CacheCompression)
  | { type: 'inline'; mode: 'min' };

const EXPORT_COMPRESSION_ATTRS = ['compression', 'compression-level', 'force-compression'];
/** buildx attributes kiln's behaviour always matches: accepted when true, refused when false. */
const ALWAYS_TRUE_ATTRS = ['oci-mediatypes', 'image-manifest', 'ignore-error'];
/** The attributes each cache spec takes; anything else is an error, never silently ignored. */
const CACHE_ATTRS: Record<string, string[]> = {
  'from:registry': ['type', 'ref'],
  'from:local': ['type', 'src', 'tag'],
  'to:registry': ['type', 'ref', 'mode', 'cache-mounts', ...EXPORT_COMPRESSION_ATTRS, ...ALWAYS_TRUE_ATTRS],
  'to:local': ['type', 'dest', 'mode', 'cache-mounts', 'tag', ...EXPORT_COMPRESSION_ATTRS, ...ALWAYS_TRUE_ATTRS],
  'to:inline': ['type', 'mode'],
};

/** `--cache-from` with buildx's option names (a bare reference means type=registry). */
export function parseCacheFrom(spec: string): CacheImportSpec {
  return parseCacheSpec(spec, 'from') as CacheImportSpec;
}

/** `--cache-to type=registry,ref=…,mode=max,cache-mounts=true` etc. */
export function parseCacheTo(spec: string): CacheExportSpec {
  return parseCacheSpec(spec, 'to') as CacheExportSpec;
}

function parseCacheSpec(spec: string, direction: 'from' | 'to'): CacheImportSpec | CacheExportSpec {
  const f = specFields(spec, `--cache-${direction}`, { trimValues: true });
  // buildx accepts a bare reference for --cache-from
  if (!f.has('type') && f.size === 1 && [...f.values()][0] === 'true') return { type: 'registry', ref: [...f.keys()][0]! };
  const type = f.get('type') ?? 'registry';
  const bad = (why: string) => new KilnError('USAGE', `--cache-${direction} "${spec}": ${why}`);
  const known = CACHE_ATTRS[`${direction}:${type}`];
  if (!known) throw bad(`unknown type "${type}" (registry, local${direction === 'to' ? ', inline' : ''})`);
  for (const [k, v] of f) {
    if (!known.includes(k)) throw bad(`unknown attribute "${k}" for type=${type}; known: ${known.filter((a) => a !== 'type').join(', ')}`);
    if (ALWAYS_TRUE_ATTRS.includes(k) && v !== 'true') throw bad(`${k}=${v} is not supported (kiln always writes an OCI image manifest and never fails a build over its cache export)`);
  }
  const mode = f.get('mode') ?? 'min';
  if (mode !== 'min' && mode !== 'max') throw new KilnError('USAGE', `--cache-${direction} "${spec}": mode must be min or max`);
  if (type === 'inline' && mode !== 'min') throw bad('type=inline exports mode=min only');
  const cacheMounts = f.get('cache-mounts') === 'true';
  const comp: CacheCompression = {};
  if (direction === 'to') {
    const c = f.get('compression');
    if (c !== undefined) {
      if (c !== 'gzip' && c !== 'zstd' && c !== 'uncompressed') throw bad(`compression must be gzip, zstd or uncompressed, not "${c}"`);
      comp.compression = c;
    }
    const level = f.get('compression-level');
    if (level !== undefined) {
      if (!/^\d+$/.test(level)) throw bad(`compression-level must be an integer, not "${level}"`);
      comp.compressionLevel = Number(level);
    }
    // every cached layer is one the build made: force-compression changes nothing, but is accepted as buildx users write it
  }
  if (type === 'registry') {
    const ref = f.get('ref');
    if (!ref) throw bad('type=registry needs ref=REGISTRY/REPO:TAG');
    return direction === 'from' ? { type, ref } : { type, ref, mode, cacheMounts, ...comp };
  }
  if (type === 'local') {
    const tag = f.get('tag');
    if (direction === 'from') {
      const src = f.get('src');
      if (!src) throw bad('type=local needs src=DIR');
      return { type, src, ...(tag ? { tag } : {}) };
    }
    const dest = f.get('dest');
    if (!dest) throw bad('type=local needs dest=DIR');
    return { type, dest, mode, cacheMounts, ...(tag ? { tag } : {}), ...comp };
  }
  if (type === 'inline' && direction === 'to') return { type: 'inline', mode: 'min' };
  throw bad(`unknown type "${type}" (registry, local${direction === 'to' ? ', inline' : ''})`);
}
