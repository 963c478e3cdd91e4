/**
 * export/ — images out of and into files: OCI image-layout archives and
 * `docker save` archives (writing and loading), with the closure of blobs an
 * image needs. Blobs come from and go to the store.
 * May import: errors/, image/, store/.
 */
export { saveOciArchive, imageClosure, CONTAINERD_NAME_ANNOTATION, OCI_REF_ANNOTATION } from './oci-archive.js';
export { saveDockerArchive, type DockerArchiveManifestEntry } from './docker-archive.js';
export { loadArchive, type LoadOptions } from './load.js';
export { familiarName, tagOf, type SaveItem, type LoadedImage } from './saved-image.js';
export { ArchiveWriter } from './archive-writer.js';
