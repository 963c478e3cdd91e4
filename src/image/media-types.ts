export const MediaType = {
  OCI_MANIFEST: 'application/vnd.oci.image.manifest.v1+json',
  OCI_INDEX: 'application/vnd.oci.image.index.v1+json',
  OCI_CONFIG: 'application/vnd.oci.image.config.v1+json',
  OCI_LAYER: 'application/vnd.oci.image.layer.v1.tar',
  OCI_LAYER_GZIP: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OCI_LAYER_ZSTD: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OCI_NONDIST_LAYER: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  OCI_NONDIST_LAYER_GZIP: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  OCI_NONDIST_LAYER_ZSTD: 'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  OCI_EMPTY: 'application/vnd.oci.empty.v1+json',
  DOCKER_MANIFEST: 'application/vnd.docker.distribution.manifest.v2+json',
  DOCKER_MANIFEST_LIST: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DOCKER_CONFIG: 'application/vnd.docker.container.image.v1+json',
  DOCKER_LAYER: 'application/vnd.docker.image.rootfs.diff.tar',
  DOCKER_LAYER_GZIP: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  /** containerd's name for a zstd layer in a Docker manifest (Docker itself never defined one). */
  DOCKER_LAYER_ZSTD: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  DOCKER_FOREIGN_LAYER_TAR: 'application/vnd.docker.image.rootfs.foreign.diff.tar',
  DOCKER_FOREIGN_LAYER: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  DOCKER_SCHEMA1: 'application/vnd.docker.distribution.manifest.v1+json',
  DOCKER_SCHEMA1_SIGNED: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export type MediaTypeName = (typeof MediaType)[keyof typeof MediaType];

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_INDEX || mt === MediaType.DOCKER_MANIFEST_LIST;
}

export function isManifestMediaType(mt: string | undefined): boolean {
  return mt === MediaType.OCI_MANIFEST || mt === MediaType.DOCKER_MANIFEST;
}

export function isSchema1MediaType(mt: string | undefined): boolean {
  return mt === MediaType.DOCKER_SCHEMA1 || mt === MediaType.DOCKER_SCHEMA1_SIGNED;
}

/** Layer compression as told by the media type. */
export function layerCompression(mt: string): 'gzip' | 'zstd' | 'none' {
  if (mt.endsWith('+gzip') || mt === MediaType.DOCKER_LAYER_GZIP || mt === MediaType.DOCKER_FOREIGN_LAYER) return 'gzip';
  if (mt.endsWith('+zstd') || mt === MediaType.DOCKER_LAYER_ZSTD) return 'zstd';
  return 'none';
}

/**
 * Docker layer media types and their OCI equivalents (the table BuildKit's
 * `ConvertAllLayerMediaTypes` uses): the blob is the same, only the name
 * differs, so a descriptor converts without touching its digest.
 */
const DOCKER_TO_OCI_LAYER: Readonly<Record<string, string>> = {
  [MediaType.DOCKER_LAYER]: MediaType.OCI_LAYER,
  [MediaType.DOCKER_LAYER_GZIP]: MediaType.OCI_LAYER_GZIP,
  [MediaType.DOCKER_LAYER_ZSTD]: MediaType.OCI_LAYER_ZSTD,
  [MediaType.DOCKER_FOREIGN_LAYER_TAR]: MediaType.OCI_NONDIST_LAYER,
  [MediaType.DOCKER_FOREIGN_LAYER]: MediaType.OCI_NONDIST_LAYER_GZIP,
};
const OCI_TO_DOCKER_LAYER: Readonly<Record<string, string>> = Object.fromEntries(Object.entries(DOCKER_TO_OCI_LAYER).map(([d, o]) => [o, d]));

/** The OCI name of a layer media type; OCI and unknown (artifact) types are returned unchanged. */
export function ociLayerMediaType(mt: string): string {
  return DOCKER_TO_OCI_LAYER[mt] ?? mt;
}

/** The Docker schema-2 name of a layer media type, or undefined when Docker has none. */
export function dockerLayerMediaType(mt: string): string | undefined {
  if (mt in DOCKER_TO_OCI_LAYER) return mt;
  return OCI_TO_DOCKER_LAYER[mt];
}

/** The layer media type, in the manifest format given, of a blob in `compression`. */
export function layerMediaTypeOf(compression: 'gzip' | 'zstd' | 'none', format: 'oci' | 'docker' = 'oci'): string {
  const oci = compression === 'gzip' ? MediaType.OCI_LAYER_GZIP : compression === 'zstd' ? MediaType.OCI_LAYER_ZSTD : MediaType.OCI_LAYER;
  return format === 'oci' ? oci : OCI_TO_DOCKER_LAYER[oci]!;
}

/**
 * Indexes nested in indexes, counting the top one: a path deeper than this is
 * refused. containerd and go-containerregistry recurse without a limit;
 * containers/image (Podman, Buildah, Skopeo) refuses any index inside an
 * index. An index inside an index is rare enough that containers/image can
 * refuse it outright, so 8 leaves room for the tools that do nest while a
 * chain of a thousand indexes costs 9 requests, not a thousand. The same
 * bound holds wherever kiln walks an image's indexes (pull, copy, save).
 */
export const MAX_INDEX_DEPTH = 8;

/**
 * Manifests, indexes, image configs and tag lists are read into memory; none
 * may be larger than this (containerd's limit), so a hostile registry or
 * store cannot make kiln hold gigabytes.
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
