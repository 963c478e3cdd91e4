import { LayeredFs } from '../context/layered-fs.js';
import type { Image } from '../image/image.js';
import { formatPlatform } from '../image/platform.js';
import { scanFileSystem, spdxDocument, type SpdxDocument } from '../sbom/index.js';
import type { Store } from '../store/store.js';
import { lowerdirsOf } from '../store/lowerdirs.js';
import { VERSION } from '../version.js';
import { PREDICATE_SPDX, statement, subjectName, type Statement } from './in-toto.js';

/** The image's file system as a read-only view over its snapshots (unpacked on first use). */
export async function imageFileSystem(store: Store, image: Image): Promise<LayeredFs> {
  return new LayeredFs(await lowerdirsOf(store, image.layers), 'image');
}

/** Scans a stored image and writes its SPDX document; `created` comes from SOURCE_DATE_EPOCH when the caller has one. */
export async function imageSbom(store: Store, image: Image, opts: { name: string; created: Date; signal?: AbortSignal }): Promise<SpdxDocument> {
  const fs = await imageFileSystem(store, image);
  const found = await scanFileSystem(fs, undefined, opts.signal);
  return spdxDocument({ name: opts.name, created: opts.created, toolVersion: VERSION, packages: found.packages, ...(found.distro ? { distro: found.distro } : {}) });
}

/** The SBOM attestation of one image manifest, as BuildKit writes it. */
export async function sbomStatement(store: Store, image: Image, opts: { ref?: string; created: Date; signal?: AbortSignal }): Promise<Statement<SpdxDocument>> {
  const c = image.config;
  const platform = formatPlatform({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) });
  const name = subjectName(opts.ref, platform);
  const doc = await imageSbom(store, image, { name, created: opts.created, ...(opts.signal ? { signal: opts.signal } : {}) });
  return statement(PREDICATE_SPDX, { name, digest: image.descriptor.digest }, doc);
}
