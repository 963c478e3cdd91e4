import { KilnError } from '../errors/index.js';
import { dockerLayerMediaType, MediaType, ociLayerMediaType } from './media-types.js';
import type { Descriptor, Index, Manifest } from './types.js';

/**
 * OCI ↔ Docker schema-2 conversion, only where nothing is lost: the config
 * bytes stay the same (both formats share the config JSON), only media types
 * change. Conversions that would drop information (zstd layers, annotations,
 * subjects, artifact types) are refused with UNSUPPORTED.
 */

/** Docker schema 2 has no zstd layers that Docker itself reads (only containerd's extension): refused. */
function toDockerLayer(mt: string): string {
  const d = dockerLayerMediaType(mt);
  if (d === undefined || d === MediaType.DOCKER_LAYER_ZSTD) refuse(`layer media type ${mt}`);
  return d;
}

function refuse(what: string): never {
  throw new KilnError('UNSUPPORTED', `cannot convert without loss: ${what}`);
}

function mapDescriptor(d: Descriptor, mediaType: string, toDocker: boolean): Descriptor {
  if (toDocker && d.annotations && Object.keys(d.annotations).length) refuse(`descriptor ${d.digest} has annotations`);
  if (toDocker && d.artifactType) refuse(`descriptor ${d.digest} has an artifactType`);
  const out: Descriptor = { mediaType, digest: d.digest, size: d.size };
  if (d.annotations) out.annotations = d.annotations;
  if (d.platform) out.platform = d.platform;
  if (d.urls) out.urls = d.urls;
  return out;
}

export function manifestToDocker(m: Manifest): Manifest {
  if (m.mediaType === MediaType.DOCKER_MANIFEST) return m;
  if (m.annotations && Object.keys(m.annotations).length) refuse('manifest annotations');
  if (m.subject) refuse('manifest subject');
  if (m.artifactType) refuse('manifest artifactType');
  if (m.config.mediaType !== MediaType.OCI_CONFIG) refuse(`config media type ${m.config.mediaType}`);
  return {
    schemaVersion: 2,
    mediaType: MediaType.DOCKER_MANIFEST,
    config: mapDescriptor(m.config, MediaType.DOCKER_CONFIG, true),
    layers: m.layers.map((l) => mapDescriptor(l, toDockerLayer(l.mediaType), true)),
  };
}

export function manifestToOci(m: Manifest): Manifest {
  if (m.mediaType === MediaType.OCI_MANIFEST) return m;
  if (m.mediaType !== undefined && m.mediaType !== MediaType.DOCKER_MANIFEST) refuse(`manifest media type ${m.mediaType}`);
  if (m.config.mediaType !== MediaType.DOCKER_CONFIG) refuse(`config media type ${m.config.mediaType}`);
  const out: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: mapDescriptor(m.config, MediaType.OCI_CONFIG, false),
    layers: m.layers.map((l) => mapDescriptor(l, ociLayerMediaType(l.mediaType), false)),
  };
  if (m.annotations) out.annotations = m.annotations;
  return out;
}

export function indexToDocker(ix: Index): Index {
  if (ix.mediaType === MediaType.DOCKER_MANIFEST_LIST) return ix;
  if (ix.annotations && Object.keys(ix.annotations).length) refuse('index annotations');
  if (ix.subject || ix.artifactType) refuse('index subject/artifactType');
  return {
    schemaVersion: 2,
    mediaType: MediaType.DOCKER_MANIFEST_LIST,
    manifests: ix.manifests.map((d) => {
      if (d.mediaType !== MediaType.OCI_MANIFEST) refuse(`index entry media type ${d.mediaType}`);
      if (!d.platform) refuse(`index entry ${d.digest} has no platform`);
      return mapDescriptor(d, MediaType.DOCKER_MANIFEST, true);
    }),
  };
}

export function indexToOci(ix: Index): Index {
  if (ix.mediaType === MediaType.OCI_INDEX) return ix;
  return {
    schemaVersion: 2,
    mediaType: MediaType.OCI_INDEX,
    manifests: ix.manifests.map((d) => {
      if (d.mediaType !== MediaType.DOCKER_MANIFEST) refuse(`manifest list entry media type ${d.mediaType}`);
      return mapDescriptor(d, MediaType.OCI_MANIFEST, false);
    }),
  };
}
