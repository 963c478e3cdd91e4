/**
 * export/ — images out of and into files: the exporters of
 * `-o type=oci|docker|local|tar` (one file per type, one `Exporter`
 * interface), OCI and `docker save` archives, and `kiln load`. Blobs come
 * from and go to the store.
 * May import: context/, errors/, fs/, image/, layer/, rootless/, store/.
 */
export { saveOciArchive, imageClosure, CONTAINERD_NAME_ANNOTATION, OCI_REF_ANNOTATION } from './oci-archive.js';
export { saveDockerArchive, type DockerArchiveManifestEntry } from './docker-archive.js';
export { loadArchive, type LoadOptions } from './load.js';
export { familiarName, tagOf, type SaveItem, type LoadedImage } from './saved-image.js';
export { ArchiveWriter } from './archive-writer.js';
export type { Exporter, ExporterInstance, ExportSource, PlatformFs } from './exporter.js';
export { ociExporter } from './oci-archive.js';
export { dockerExporter } from './docker-archive.js';
export { localExporter } from './local.js';
export { tarExporter } from './tar.js';
