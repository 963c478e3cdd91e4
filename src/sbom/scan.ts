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

/** Bounds that keep a scan of a hostile image finite. */
export interface ScanLimits {
  /** Nodes walked before the scan stops with an error. */
  maxNodes: number;
  /** Largest package database or manifest read into memory. */
  maxTextBytes: number;
  /** Largest executable searched for Go build info. */
  maxBinaryBytes: number;
}

export const DEFAULT_SCAN_LIMITS: ScanLimits = { maxNodes: 2_000_000, maxTextBytes: 64 << 20, maxBinaryBytes: 512 << 20 };

export interface ScanResult {
  distro?: Distro;
  packages: FoundPackage[];
}

async function readBytes(node: FsNode, path: string, limits: ScanLimits): Promise<Buffer | undefined> {
  if (node.type !== 'file' || !node.host) return undefined;
  if (node.size > limits.maxTextBytes) throw new KilnError('UNSUPPORTED', `SBOM scan: "${path}" is ${node.size} bytes, over the ${limits.maxTextBytes}-byte limit for a package database`);
  return readFile(node.host.path);
}

async function readText(_view: FsView, node: FsNode, path: string, limits: ScanLimits): Promise<string | undefined> {
  return (await readBytes(node, path, limits))?.toString('utf8');
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

  const result: ScanResult = { packages: [] };
  if (osRelease) {
    const text = await readText(view, osRelease[1], osRelease[0], limits);
    const d = text === undefined ? undefined : parseOsRelease(text);
    if (d) result.distro = d;
  }
  const distro = distroQualifier(result.distro);
  const namespace = result.distro?.id;
  const seen = new Set<string>();
  const add = (pkgs: Iterable<FoundPackage | undefined>) => {
    for (const p of pkgs) {
      if (!p) continue;
      const key = `${p.kind}\0${p.name}\0${p.version}\0${p.arch ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      result.packages.push(p);
    }
  };
  for (const [path, node] of dpkg) {
    const text = await readText(view, node, path, limits);
    if (text !== undefined) add(parseDpkgStatus(text, { location: path, ...(distro ? { distro } : {}), ...(namespace ? { namespace } : {}) }));
  }
  for (const [path, node] of apk) {
    const text = await readText(view, node, path, limits);
    if (text !== undefined) add(parseApkInstalled(text, { location: path, ...(distro ? { distro } : {}) }));
  }
  for (const [path, node] of rpm) {
    const bytes = await readBytes(node, path, limits);
    if (bytes !== undefined) add(await parseRpmDb(bytes, { location: path, ...(distro ? { distro } : {}), ...(namespace ? { namespace } : {}) }));
  }
  for (const [path, node] of npmPkgs) {
    signal?.throwIfAborted();
    const text = await readText(view, node, path, limits);
    if (text !== undefined) add([parsePackageJson(text, path)]);
  }
  for (const [path, node] of locks) {
    const text = await readText(view, node, path, limits);
    if (text !== undefined) add(parsePackageLock(text, path));
  }
  for (const [path, node] of python) {
    signal?.throwIfAborted();
    const text = await readText(view, node, path, limits);
    if (text !== undefined) add([parsePythonMetadata(text, path)]);
  }
  for (const [path, node] of binaries) {
    signal?.throwIfAborted();
    if (!node.host) continue;
    const info = await readGoBuildInfo(node.host.path, limits.maxBinaryBytes).catch(() => undefined);
    if (info) add(goPackages(info, path));
  }
  return result;
}
