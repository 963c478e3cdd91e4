/** The package ecosystems kiln's scanners recognise; each maps to a purl type. */
export type PackageKind = 'deb' | 'apk' | 'rpm' | 'npm' | 'pypi' | 'golang';

/** One package found in an image's file system. */
export interface FoundPackage {
  kind: PackageKind;
  name: string;
  version: string;
  /** Package URL (https://github.com/package-url/purl-spec). */
  purl: string;
  /** Declared licence expression or name, as the package database states it. */
  license?: string;
  /** Architecture, where the database records one (deb, apk, rpm). */
  arch?: string;
  /** Maintainer or publisher, where the database records one. */
  supplier?: string;
  /** The file the package was read from, relative to the image root ("var/lib/dpkg/status"). */
  location: string;
}

/** Distribution identity from /etc/os-release, used for the purl `distro` qualifier. */
export interface Distro {
  id: string;
  versionId?: string;
  prettyName?: string;
}
