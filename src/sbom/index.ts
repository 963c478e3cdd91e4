/**
 * sbom/ — what software an image holds. Scanners read package databases and
 * manifests from an image's file system (an FsView: no execution, no symlink
 * following) and the SPDX writer turns the result into the document BuildKit's
 * SBOM attestations carry. Besides kiln's folders it uses sql.js (SQLite as
 * WebAssembly, for rpm's database) only.
 * May import: context/ (FsView), errors/, image/.
 */
export { scanFileSystem, DEFAULT_SCAN_LIMITS, type ScanLimits, type ScanResult, type ScanStats } from './scan.js';
export { spdxDocument, spdxLicense, type SpdxDocument, type SpdxPackage } from './spdx.js';
export type { FoundPackage, PackageKind, Distro } from './types.js';
export { purl } from './purl.js';
