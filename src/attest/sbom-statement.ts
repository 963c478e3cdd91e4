import { LayeredFs } from '../context/layered-fs.js';
import type { FsView } from '../context/fs-view.js';
import type { Digest } from '../image/digest.js';
import type { Image, LayerRef } from '../image/image.js';
import { formatPlatform } from '../image/platform.js';
import { scanFileSystem, spdxDocument, type SpdxDocument } from '../sbom/index.js';
import type { Store } from '../store/store.js';
import { lowerdirsOf } from '../store/lowerdirs.js';
import { VERSION } from '../version.js';
import { PREDICATE_SPDX, statement, subjectName, type Statement } from './in-toto.js';

/** The file system of `layers` (bottom first) as a read-only view over their snapshots (unpacked on first use). */
export async function layersFileSystem(store: Store, layers: readonly LayerRef[]): Promise<LayeredFs> {
  return new LayeredFs(await lowerdirsOf(store, layers), 'image');
}

/** The image's file system as a read-only view over its snapshots (unpacked on first use). */
export async function imageFileSystem(store: Store, image: Image): Promise<LayeredFs> {
  return layersFileSystem(store, image.layers);
}

/** Scans a file system and writes its SPDX document; `created` comes from SOURCE_DATE_EPOCH when the caller has one. */
export async function viewSbom(view: FsView, opts: { name: string; created: Date; signal?: AbortSignal }): Promise<SpdxDocument> {
  const found = await scanFileSystem(view, undefined, opts.signal);
  return spdxDocument({ name: opts.name, created: opts.created, toolVersion: VERSION, packages: found.packages, ...(found.distro ? { distro: found.distro } : {}) });
}

/** Scans a stored image and writes its SPDX document. */
export async function imageSbom(store: Store, image: Image, opts: { name: string; created: Date; signal?: AbortSignal }): Promise<SpdxDocument> {
  return viewSbom(await imageFileSystem(store, image), opts);
}

/** The SBOM attestation of one image manifest, as BuildKit writes it. */
export async function sbomStatement(store: Store, image: Image, opts: { ref?: string; created: Date; signal?: AbortSignal }): Promise<Statement<SpdxDocument>> {
  const c = image.config;
  const platform = formatPlatform({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) });
  const name = subjectName(opts.ref, platform);
  const doc = await imageSbom(store, image, { name, created: opts.created, ...(opts.signal ? { signal: opts.signal } : {}) });
  return statement(PREDICATE_SPDX, { name, digest: image.descriptor.digest }, doc);
}

/** What BuildKit calls the core SBOM (the image's); the extra ones are `sbom-<stage>` and `sbom-context`. */
export const CORE_SBOM_NAME = 'sbom';

/**
 * An extra SBOM of the build, attached beside the image's own as BuildKit does
 * with `BUILDKIT_SBOM_SCAN_STAGE` / `BUILDKIT_SBOM_SCAN_CONTEXT`: a build stage
 * or the context, scanned, with the image as subject and `sbom-<name>` as the
 * document's name (what buildx's `.SBOM.AdditionalSPDXs` shows).
 */
export async function extraSbomStatement(view: FsView, subject: { name: string; digest: Digest }, opts: { name: string; created: Date; signal?: AbortSignal }): Promise<Statement<SpdxDocument>> {
  const doc = await viewSbom(view, { name: `${CORE_SBOM_NAME}-${opts.name}`, created: opts.created, ...(opts.signal ? { signal: opts.signal } : {}) });
  return statement(PREDICATE_SPDX, subject, doc);
}
