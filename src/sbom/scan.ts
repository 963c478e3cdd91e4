import { readFile } from 'node:fs/promises';
import { KilnError } from '../errors/index.js';
import { forEachNode, type FsNode, type FsView } from '../context/fs-view.js';
import { parseApkInstalled } from './apk.js';
import { parseDpkgStatus } from './dpkg.js';
import { parseRpmDb } from './rpm.js';
import { goPackages, readGoBuildInfo } from './go-buildinfo.js';
import { parsePackageJson, parsePackageLock } from './npm.js';
import { distroQualifier, parseOsRelease } from './os-release.js';
import { parsePythonMetadata } from './python.js';
import type { Distro, FoundPackage } from './types.js';

/**
 * Bounds that keep a scan of a hostile image finite. Each one passed is an
 * error naming it: an SBOM that silently left packages out would be trusted
 * as the image's whole inventory.
 */
export interface ScanLimits {
  /** Nodes walked before the scan stops with an error. */
  maxNodes: number;
  /** Largest package database or manifest read into memory. */
  maxTextBytes: number;
  /** Package databases and manifests read in all: an image may hold any number of them (status.d/, node_modules/). */
  maxTotalTextBytes: number;
  /** Largest executable searched for Go build info. */
  maxBinaryBytes: number;
  /** Executables searched in all, each file (device and inode) once however many hard links name it. */
  maxTotalBinaryBytes: number;
  /** Packages listed: each costs memory and an entry (two objects) in the document, which JSON.stringify must fit in one string. */
  maxPackages: number;
}

/**
 * A Debian bookworm image reads 77 kB of databases and searches 30 MB of
 * executables, for 88 packages; a large Node or Python image a few thousand
 * manifests and packages. The totals leave room for images far larger than
 * those, and stop a hostile one after seconds, not hours.
 */
export const DEFAULT_SCAN_LIMITS: ScanLimits = {
  maxNodes: 2_000_000,
  maxTextBytes: 64 << 20,
  maxTotalTextBytes: 256 << 20,
  maxBinaryBytes: 512 << 20,
  maxTotalBinaryBytes: 8 * 1024 ** 3,
  maxPackages: 100_000,
};

/** What a scan read: the quantities the limits bound. */
export interface ScanStats {
  /** Package databases and manifests read, and their bytes. */
  textFiles: number;
  textBytes: number;
  /** Executables searched for Go build info (distinct files), and their bytes. */
  binaries: number;
  binaryBytes: number;
}

export interface ScanResult {
  distro?: Distro;
  packages: FoundPackage[];
  read: ScanStats;
}

/** Where rpm ≥ 4.16 keeps its SQLite database: /var/lib/rpm, or /usr/lib/sysimage/rpm (Fedora ≥ 36, openSUSE) with /var/lib/rpm a symlink to it. */
const RPMDB_PATHS = new Set(['var/lib/rpm/rpmdb.sqlite', 'usr/lib/sysimage/rpm/rpmdb.sqlite']);

/**
 * Lists the packages an image's file system holds, from the databases package
 * managers keep (dpkg, apk), language manifests (npm, Python) and Go binaries'
 * embedded build info. Nothing is executed and no symlink is followed: the walk
 * reads only regular files, through the view's own nodes.
 */
export async function scanFileSystem(view: FsView, limits: ScanLimits = DEFAULT_SCAN_LIMITS, signal?: AbortSignal): Promise<ScanResult> {
  const read: ScanStats = { textFiles: 0, textBytes: 0, binaries: 0, binaryBytes: 0 };
  const readBytes = async (node: FsNode, path: string): Promise<Buffer | undefined> => {
    if (node.type !== 'file' || !node.host) return undefined;
    if (node.size > limits.maxTextBytes) throw new KilnError('UNSUPPORTED', `SBOM scan: "${path}" is ${node.size} bytes, over the ${limits.maxTextBytes}-byte limit for a package database`);
    if (read.textBytes + node.size > limits.maxTotalTextBytes) {
      throw new KilnError('UNSUPPORTED', `SBOM scan: the image's package databases and manifests add up to more than ${limits.maxTotalTextBytes} bytes (the limit, passed at "${path}")`);
    }
    read.textFiles++;
    read.textBytes += node.size;
    return readFile(node.host.path);
  };
  const readText = async (node: FsNode, path: string): Promise<string | undefined> => (await readBytes(node, path))?.toString('utf8');

  const dpkg: Array<[string, FsNode]> = [];
  const apk: Array<[string, FsNode]> = [];
  const rpm: Array<[string, FsNode]> = [];
  const npmPkgs: Array<[string, FsNode]> = [];
  const locks: Array<[string, FsNode]> = [];
  const python: Array<[string, FsNode]> = [];
  const binaries: Array<[string, FsNode]> = [];
  let osRelease: [string, FsNode] | undefined;
  let count = 0;
  forEachNode(view, '', (path, node) => {
    if (++count > limits.maxNodes) throw new KilnError('UNSUPPORTED', `SBOM scan: the image holds more than ${limits.maxNodes} files`);
    if (node.type !== 'file') return;
    if (path === 'etc/os-release' || (path === 'usr/lib/os-release' && !osRelease)) osRelease = [path, node];
    else if (path === 'var/lib/dpkg/status' || path.startsWith('var/lib/dpkg/status.d/')) {
      // distroless images keep one deb822 file per package in status.d/, next to .md5sums files
      if (!path.endsWith('.md5sums')) dpkg.push([path, node]);
    } else if (path === 'lib/apk/db/installed') apk.push([path, node]);
    else if (RPMDB_PATHS.has(path)) rpm.push([path, node]);
    else if (path.endsWith('/package.json') && /(^|\/)node_modules\/(@[^/]+\/)?[^/@][^/]*\/package\.json$/.test(path)) npmPkgs.push([path, node]);
    else if ((path === 'package-lock.json' || path.endsWith('/package-lock.json')) && !path.includes('node_modules/')) locks.push([path, node]);
    else if (/\.dist-info\/METADATA$/.test(path) || /\.egg-info\/PKG-INFO$/.test(path)) python.push([path, node]);
    else if ((node.mode & 0o111) !== 0 && node.size >= 4096 && node.size <= limits.maxBinaryBytes) binaries.push([path, node]);
  });

  const result: ScanResult = { packages: [], read };
  if (osRelease) {
    const text = await readText(osRelease[1], osRelease[0]);
    const d = text === undefined ? undefined : parseOsRelease(text);
    if (d) result.distro = d;
  }
  const distro = distroQualifier(result.distro);
  const namespace = result.distro?.id;
  const seen = new Set<string>();
  // parsers yield one package at a time, so passing the limit stops the parse too: a 32 MiB status file of
  // made-up packages took 72 s and 2 GB, then failed writing the document ("Invalid string length")
  const add = (pkgs: Iterable<FoundPackage | undefined>, path: string) => {
    for (const p of pkgs) {
      if (!p) continue;
      const key = `${p.kind}\0${p.name}\0${p.version}\0${p.arch ?? ''}`;
      if (seen.has(key)) continue;
      if (result.packages.length >= limits.maxPackages) {
        throw new KilnError('UNSUPPORTED', `SBOM scan: the image lists more than ${limits.maxPackages} packages (the limit, passed at "${path}"); no partial SBOM is written`);
      }
      seen.add(key);
      result.packages.push(p);
    }
  };
  for (const [path, node] of dpkg) {
    signal?.throwIfAborted();
    const text = await readText(node, path);
    if (text !== undefined) add(parseDpkgStatus(text, { location: path, ...(distro ? { distro } : {}), ...(namespace ? { namespace } : {}) }), path);
  }
  for (const [path, node] of apk) {
    const text = await readText(node, path);
    if (text !== undefined) add(parseApkInstalled(text, { location: path, ...(distro ? { distro } : {}) }), path);
  }
  for (const [path, node] of rpm) {
    const bytes = await readBytes(node, path);
    if (bytes !== undefined) add(await parseRpmDb(bytes, { location: path, maxPackages: limits.maxPackages, ...(distro ? { distro } : {}), ...(namespace ? { namespace } : {}) }), path);
  }
  for (const [path, node] of npmPkgs) {
    signal?.throwIfAborted();
    const text = await readText(node, path);
    if (text !== undefined) add([parsePackageJson(text, path)], path);
  }
  for (const [path, node] of locks) {
    signal?.throwIfAborted();
    const text = await readText(node, path);
    if (text !== undefined) add(parsePackageLock(text, path), path);
  }
  for (const [path, node] of python) {
    signal?.throwIfAborted();
    const text = await readText(node, path);
    if (text !== undefined) add([parsePythonMetadata(text, path)], path);
  }
  // hard links name one file many times: 2000 links to one 32 MiB executable were searched 2000 times.
  // A file searched once yields the same packages under any of its names (add() keys them without location).
  const searched = new Set<string>();
  for (const [path, node] of binaries) {
    signal?.throwIfAborted();
    if (!node.host) continue;
    const id = `${node.host.dev}:${node.host.ino}`;
    if (searched.has(id)) continue;
    searched.add(id);
    if (read.binaryBytes + node.size > limits.maxTotalBinaryBytes) {
      throw new KilnError('UNSUPPORTED', `SBOM scan: the image's executables add up to more than ${limits.maxTotalBinaryBytes} bytes to search for Go build info (the limit, passed at "${path}")`);
    }
    read.binaries++;
    read.binaryBytes += node.size;
    const info = await readGoBuildInfo(node.host.path, limits.maxBinaryBytes).catch(() => undefined);
    if (info) add(goPackages(info, path), path);
  }
  return result;
}
