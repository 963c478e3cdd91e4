/** Images out of and into files: OCI archives and `docker save` archives. */
export { saveOciArchive, imageClosure, CONTAINERD_NAME_ANNOTATION, OCI_REF_ANNOTATION } from './oci-archive.js';
export { saveDockerArchive, type DockerArchiveManifestEntry } from './docker-archive.js';
export { loadArchive, type LoadOptions } from './load.js';
export { familiarName, tagOf, type SaveItem, type LoadedImage } from './saved-image.js';
export { ArchiveWriter } from './archive-writer.js';
