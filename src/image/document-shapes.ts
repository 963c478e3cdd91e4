import { isDigest, type Digest } from './digest.js';
import type { Descriptor, ImageConfig, Index, Manifest, Platform } from './types.js';

/**
 * Checks that a parsed JSON document has the shape kiln relies on before it is
 * used as one: manifests, indexes and configs come from registries and
 * archives (hostile), index.json and metadata files from disk (damaged).
 * Unknown fields pass through; the fields kiln reads are checked, so a bad
 * document fails here with a reason instead of as a TypeError deep inside.
 */

/** Thrown by a shape check; the caller names the file or blob. */
export class ShapeError extends Error {}

export type Shape<T> = (v: unknown) => T;

export function fail(why: string): never {
  throw new ShapeError(why);
}

/**
 * JSON.parse that drops `__proto__` keys: a parsed object never carries one
 * that a later spread or merge could turn into a prototype.
 */
export function parseJSONSafe(text: string): unknown {
  return JSON.parse(text, (key, value: unknown) => (key === '__proto__' ? undefined : value));
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function objectShape(v: unknown, what: string): Record<string, unknown> {
  if (!isObject(v)) fail(`${what} is not a JSON object`);
  return v;
}

export function arrayShape(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) fail(`${what} is not a JSON array`);
  return v;
}

export function stringShape(v: unknown, what: string): string {
  if (typeof v !== 'string') fail(`${what} is not a string`);
  return v;
}

export function digestShape(v: unknown, what: string): Digest {
  if (typeof v !== 'string' || !isDigest(v)) fail(`${what} is not a sha256 digest`);
  return v;
}

function stringMap(v: unknown, what: string): Record<string, string> {
  const o = objectShape(v, what);
  for (const [k, s] of Object.entries(o)) stringShape(s, `${what}["${k}"]`);
  return o as Record<string, string>;
}

function platformShape(v: unknown, what: string): Platform {
  const o = objectShape(v, what);
  stringShape(o['architecture'], `${what}.architecture`);
  stringShape(o['os'], `${what}.os`);
  return o as unknown as Platform;
}

export function descriptorShape(v: unknown, what = 'descriptor'): Descriptor {
  const o = objectShape(v, what);
  stringShape(o['mediaType'], `${what}.mediaType`);
  digestShape(o['digest'], `${what}.digest`);
  const size = o['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) fail(`${what}.size is not a non-negative integer`);
  if (o['annotations'] !== undefined) stringMap(o['annotations'], `${what}.annotations`);
  if (o['platform'] !== undefined) platformShape(o['platform'], `${what}.platform`);
  if (o['urls'] !== undefined) arrayShape(o['urls'], `${what}.urls`).forEach((u, i) => stringShape(u, `${what}.urls[${i}]`));
  return o as unknown as Descriptor;
}

export const indexShape: Shape<Index> = (v) => {
  const o = objectShape(v, 'index');
  arrayShape(o['manifests'], 'index.manifests').forEach((m, i) => descriptorShape(m, `manifests[${i}]`));
  if (o['annotations'] !== undefined) stringMap(o['annotations'], 'index.annotations');
  return o as unknown as Index;
};

export const manifestShape: Shape<Manifest> = (v) => {
  const o = objectShape(v, 'manifest');
  descriptorShape(o['config'], 'config');
  arrayShape(o['layers'], 'manifest.layers').forEach((l, i) => descriptorShape(l, `layers[${i}]`));
  if (o['annotations'] !== undefined) stringMap(o['annotations'], 'manifest.annotations');
  return o as unknown as Manifest;
};

/** An image config: only what the store reads (rootfs.diff_ids) is checked; the rest is the image's own business. */
export const configShape: Shape<ImageConfig> = (v) => {
  const o = objectShape(v, 'config');
  if (o['rootfs'] !== undefined) {
    const r = objectShape(o['rootfs'], 'config.rootfs');
    if (r['diff_ids'] !== undefined) arrayShape(r['diff_ids'], 'rootfs.diff_ids').forEach((d, i) => digestShape(d, `rootfs.diff_ids[${i}]`));
  }
  return o as unknown as ImageConfig;
};
