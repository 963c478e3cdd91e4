import { createReadStream } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { KilnError } from '../errors/index.js';
import { isDigest, type Digest } from '../image/digest.js';
import { isIndexMediaType, isManifestMediaType } from '../image/media-types.js';
import { formatPlatform, selectManifest } from '../image/platform.js';
import type { Descriptor, Index, Manifest, Platform } from '../image/types.js';
import type { Store } from '../store/store.js';
import { OCI_INDEX_FILE, OCI_LAYOUT_FILE, REF_NAME_ANNOTATION as OCI_REF_ANNOTATION, layoutBlobPath } from '../image/oci-layout.js';
import { CONTAINERD_NAME_ANNOTATION } from './oci-archive.js';

/** index.json and manifests are small documents; anything bigger is not an image layout. */
const MAX_DOCUMENT_BYTES = 16 * 1024 * 1024;

/** `oci-layout://PATH[:TAG][@DIGEST]` once parsed (buildx's `ocilayout.Parse`). */
export interface OciLayoutRef {
  path: string;
  tag?: string;
  digest?: Digest;
}

/**
 * Parses `oci-layout://PATH[:TAG][@sha256:…]` as buildx does: the digest after
 * the last `@`, then a tag after the last `:` when it is a valid tag; neither
 * means the tag `latest`.
 */
export function parseOciLayoutRef(value: string): OciLayoutRef {
  let rest = value.replace(/^oci-layout:\/\//, '');
  const out: Partial<OciLayoutRef> = {};
  const at = rest.lastIndexOf('@');
  if (at >= 0 && /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/.test(rest.slice(at + 1))) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) throw new KilnError('USAGE', `oci-layout://${rest}: unsupported digest "${d}" (want sha256:<64 hex>)`);
    out.digest = d;
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  if (colon >= 0 && /^[\w][\w.-]{0,127}$/.test(rest.slice(colon + 1))) {
    out.tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (rest === '') throw new KilnError('USAGE', `oci-layout://: no layout directory given`);
  if (out.tag === undefined && out.digest === undefined) out.tag = 'latest';
  return { path: rest, ...out };
}

/**
 * Copies one image of an OCI image layout directory into the store: the
 * index or manifest the reference names, the manifest for `platform` and its
 * config and layers. Every blob is verified against its digest as it is
 * written, so a layout cannot pass off other content under a known digest.
 * Returns the descriptor the reference named (an index stays an index).
 */
export async function importFromLayout(store: Store, ref: OciLayoutRef, platform: Platform): Promise<Descriptor> {
  const label = `oci-layout://${ref.path}`;
  const fail = (why: string) => new KilnError('NOT_FOUND', `${label}: ${why}`);
  if (!(await lstat(path.join(ref.path, OCI_LAYOUT_FILE)).catch(() => undefined))?.isFile()) throw fail('not an OCI image layout (no oci-layout file)');
  const index = parseDocument<Index>(await readDocument(path.join(ref.path, OCI_INDEX_FILE), label), `${label}/${OCI_INDEX_FILE}`);
  const listed = Array.isArray(index.manifests) ? index.manifests : [];
  let top: Descriptor | undefined;
  if (ref.tag !== undefined) {
    // buildx resolves the tag first (containerd's name annotation, then the OCI ref name), else a lone image
    top = listed.find((m) => m.annotations?.[CONTAINERD_NAME_ANNOTATION] === ref.tag) ?? listed.find((m) => m.annotations?.[OCI_REF_ANNOTATION] === ref.tag);
    if (!top && listed.length === 1) top = listed[0];
    if (!top) throw fail(`no image tagged "${ref.tag}" (tags: ${listed.map((m) => m.annotations?.[OCI_REF_ANNOTATION]).filter(Boolean).join(', ') || 'none'})`);
    if (ref.digest !== undefined && top.digest !== ref.digest) top = undefined;
  }
  if (ref.digest !== undefined && !top) {
    // a digest may name any blob of the layout, listed in index.json or not
    top = listed.find((m) => m.digest === ref.digest);
    if (!top) {
      const bytes = await readDocument(blobPath(ref.path, ref.digest), label);
      const doc = parseDocument<{ mediaType?: string }>(bytes, ref.digest);
      top = { mediaType: doc.mediaType ?? '', digest: ref.digest, size: bytes.length };
    }
  }
  if (!top || !isDigest(top.digest)) throw fail('index.json names no usable image');
  const desc: Descriptor = { mediaType: top.mediaType, digest: top.digest, size: top.size };
  await copyClosure(store, ref.path, desc, platform, label);
  return desc;
}

async function copyClosure(store: Store, dir: string, desc: Descriptor, platform: Platform, label: string): Promise<void> {
  if (isIndexMediaType(desc.mediaType)) {
    const index = parseDocument<Index>(await copyDocument(store, dir, desc, label), desc.digest);
    const manifests = Array.isArray(index.manifests) ? index.manifests : [];
    const lone = manifests.length === 1 && !manifests[0]!.platform ? manifests[0] : undefined;
    const chosen = selectManifest(manifests, platform) ?? lone;
    if (!chosen) throw new KilnError('NOT_FOUND', `${label}: no image for platform ${formatPlatform(platform)} in ${desc.digest}`);
    return copyClosure(store, dir, chosen, platform, label);
  }
  if (!isManifestMediaType(desc.mediaType)) throw new KilnError('UNSUPPORTED', `${label}: ${desc.digest} is a ${desc.mediaType || 'document without a media type'}, not an image manifest or index`);
  const manifest = parseDocument<Manifest>(await copyDocument(store, dir, desc, label), desc.digest);
  if (!manifest.config || !Array.isArray(manifest.layers)) throw new KilnError('ARCHIVE', `${label}: ${desc.digest} is not an image manifest`);
  await copyBlob(store, dir, manifest.config, label);
  for (const l of manifest.layers) await copyBlob(store, dir, l, label);
}

async function copyDocument(store: Store, dir: string, desc: Descriptor, label: string): Promise<Buffer> {
  await copyBlob(store, dir, desc, label);
  return store.readBlob(desc.digest);
}

/**
 * Copies the blob `desc` names from the layout in `dir` into the store, once its digest and
 * size are well-formed (a hostile index cannot name a path outside `blobs/` or an unbounded
 * size) and the file is a regular one.
 */
export async function copyBlob(store: Store, dir: string, desc: Descriptor, label: string): Promise<void> {
  checkLayoutDescriptor(desc, label);
  if (await store.hasBlob(desc.digest)) return;
  const file = blobPath(dir, desc.digest);
  // a regular file only: a FIFO or device named like a blob would hang or stream forever
  if (!(await lstat(file).catch(() => undefined))?.isFile()) throw new KilnError('NOT_FOUND', `${label}: blob ${desc.digest} is missing`);
  await store.writeBlob(createReadStream(file), { digest: desc.digest, size: desc.size });
}

function checkLayoutDescriptor(desc: Descriptor, label: string): void {
  if (!isDigest(desc.digest)) throw new KilnError('ARCHIVE', `${label}: invalid digest "${String(desc.digest)}"`);
  if (!Number.isSafeInteger(desc.size) || desc.size < 0) throw new KilnError('ARCHIVE', `${label}: invalid size for ${desc.digest}`);
}

/** A JSON document of the layout in `dir` (manifest, config), bounded and checked like every other. */
export async function readLayoutDocument<T>(dir: string, desc: Descriptor, label: string): Promise<T> {
  checkLayoutDescriptor(desc, label);
  return parseDocument<T>(await readDocument(blobPath(dir, desc.digest), label), desc.digest);
}

/** The layout's index.json, bounded and checked; undefined when there is none. */
export async function readLayoutIndex(dir: string, label: string): Promise<Index | undefined> {
  const file = path.join(dir, OCI_INDEX_FILE);
  if (!(await lstat(file).catch(() => undefined))) return undefined;
  return parseDocument<Index>(await readDocument(file, label), `${label}/${OCI_INDEX_FILE}`);
}

function blobPath(dir: string, d: Digest): string {
  // the layout's own naming, as kiln writes layouts (image/oci-layout)
  return path.join(dir, layoutBlobPath(d));
}

async function readDocument(file: string, label: string): Promise<Buffer> {
  const st = await lstat(file).catch(() => undefined);
  if (!st?.isFile()) throw new KilnError('NOT_FOUND', `${label}: ${path.basename(file)} is missing`);
  if (st.size > MAX_DOCUMENT_BYTES) throw new KilnError('ARCHIVE', `${label}: ${path.basename(file)} is larger than ${MAX_DOCUMENT_BYTES} bytes`);
  return readFile(file);
}

function parseDocument<T>(b: Buffer, what: string): T {
  try {
    const v = JSON.parse(b.toString('utf8')) as unknown;
    if (v === null || typeof v !== 'object') throw new Error('not an object');
    return v as T;
  } catch (e) {
    throw new KilnError('ARCHIVE', `${what} is not valid JSON: ${(e as Error).message}`);
  }
}
