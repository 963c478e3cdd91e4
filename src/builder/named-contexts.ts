import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { KilnError } from '../errors/index.js';
import type { Digest } from '../image/digest.js';
import type { LayerRef } from '../image/image.js';
import { scratchConfig } from '../image/config.js';
import { isoSeconds } from '../image/timestamp.js';
import { formatPlatform } from '../image/platform.js';
import type { Platform } from '../image/types.js';
import { parseReference } from '../registry/reference.js';
import type { Store } from '../store/store.js';
import type { CacheIndex } from '../cache/records.js';
import { stepCacheKey } from '../cache/keys.js';
import type { LayerWriteOptions } from '../layer/types.js';
import type { HashCache } from '../context/hash-cache.js';
import type { BaseImage } from '../solver/ports.js';
import type { StoreImageSource } from './image-source.js';

/**
 * `--build-context NAME=VALUE`: what buildx accepts as VALUE, and what `FROM
 * NAME`, `COPY --from=NAME` and `RUN --mount from=NAME` then see.
 */
export type NamedContextSource =
  /** `docker-image://REF`: that image (from the store, else its registry). */
  | { kind: 'image'; ref: string }
  /** `oci-layout://PATH[:TAG][@DIGEST]`: an image of a local OCI image layout. */
  | { kind: 'oci-layout'; value: string }
  /** A local directory: its files (`.dockerignore` in it applied) as a file system of its own. */
  | { kind: 'local'; path: string }
  /** A git URL (`https://host/repo.git#ref:subdir`, `git://…`, `git@host:repo`): the checkout of the ref, shallow. */
  | { kind: 'git'; url: string }
  /** An http(s) URL that is not a git repository: the download, as one file named `context` (BuildKit does not unpack it). */
  | { kind: 'http'; url: string };

/** Reads a `--build-context` VALUE the way buildx sorts them. */
export function parseNamedContext(value: string): NamedContextSource {
  if (value.startsWith('docker-image://')) {
    const ref = value.slice('docker-image://'.length);
    if (ref === '') throw new KilnError('USAGE', `--build-context value "${value}" names no image`);
    return { kind: 'image', ref };
  }
  if (value.startsWith('oci-layout://')) return { kind: 'oci-layout', value };
  if (/^git@[^:]+:/.test(value) || /^(git|ssh):\/\//.test(value) || /^https?:\/\/[^#]*\.git\/?(#.*)?$/.test(value)) return { kind: 'git', url: value };
  if (/^https?:\/\//i.test(value)) return { kind: 'http', url: value };
  // buildx also knows `target:` (a bake target) and `input:`; neither exists outside bake and the gateway API
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value);
  if (scheme) throw new KilnError('USAGE', `--build-context value "${value}": unsupported source ${scheme[1]}:// (want a directory, docker-image://, oci-layout://, a git URL or an http(s) URL)`);
  return { kind: 'local', path: value };
}

/**
 * The key a name is looked up by, as BuildKit normalises it: the familiar
 * reference without `:latest`, so `FROM docker.io/library/alpine` finds a
 * context named `alpine`. A name that is not a reference stays as written.
 */
export function namedContextKey(name: string): string {
  const lower = name.toLowerCase();
  try {
    return parseReference(lower).familiar().replace(/:latest$/, '');
  } catch {
    return lower;
  }
}

/** A source the build read that provenance lists (its `materials`). */
export interface ContextMaterial {
  uri: string;
  digest: Record<string, string>;
}

/** A git repository the build checked out, and the commit: the main context or a named one. */
export interface GitCheckout {
  /** `context` for the main build context, else the `--build-context` name. */
  context: string;
  url: string;
  commit: string;
}

export interface ResolvedContext {
  base: BaseImage;
  /** `docker-image://REF`: the reference, for provenance to name as any other image. */
  imageRef?: string;
  /** Other sources provenance lists: a layout's image, a checkout, a download (never a local directory). */
  material?: ContextMaterial;
}

export interface NamedContextsInit {
  /** Name (as given) → VALUE. */
  contexts: Record<string, string>;
  store: Store;
  images: StoreImageSource;
  cache: CacheIndex;
  layerOptions: LayerWriteOptions;
  sourceDateEpoch: number | undefined;
}

export interface NamedContexts {
  /** The context a name (a FROM or --from value, or a stage name) stands for, if any. */
  resolve(name: string, platform: Platform, signal: AbortSignal): Promise<ResolvedContext> | undefined;
  /** Every git checkout made so far (for the build result and provenance). */
  readonly gitCheckouts: GitCheckout[];
}

/** A directory-like context once turned into one layer (memoised per name: it does not depend on the platform). */
interface TreeLayer {
  key: Digest;
  layer: LayerRef;
  label: string;
  material?: ContextMaterial;
}

/**
 * Resolves `--build-context` names. Images and OCI layouts become the image
 * they name for each platform; a directory, a git checkout or a download
 * becomes a one-layer file system (files owned by root, as COPY makes them),
 * kept in the build cache under the digest of its content, so an unchanged
 * directory costs a hash and no new layer, and steps on top of it stay cached.
 */
export function createNamedContexts(init: NamedContextsInit): NamedContexts {
  const byKey = new Map<string, { name: string; source: NamedContextSource }>();
  for (const [name, value] of Object.entries(init.contexts)) byKey.set(namedContextKey(name), { name, source: parseNamedContext(value) });
  const trees = new Map<string, Promise<TreeLayer>>();
  const images = new Map<string, Promise<ResolvedContext>>();
  const gitCheckouts: GitCheckout[] = [];

  return {
    gitCheckouts,
    resolve(name, platform, signal) {
      const entry = byKey.get(namedContextKey(name));
      if (!entry) return undefined;
      const { source } = entry;
      switch (source.kind) {
        case 'image':
          return memo(images, `${entry.name}|${formatPlatform(platform)}`, async () => ({ base: await init.images.resolve(source.ref, platform, signal), imageRef: source.ref }));
        case 'oci-layout':
          return memo(images, `${entry.name}|${formatPlatform(platform)}`, async () => {
            const { importFromLayout, parseOciLayoutRef } = await import('../export/oci-layout.js');
            const ref = parseOciLayoutRef(source.value);
            const desc = await importFromLayout(init.store, ref, platform);
            const base = await init.images.fromDescriptor(source.value, desc, platform);
            const uri = `oci-layout://${ref.path}${ref.tag ? `:${ref.tag}` : ''}@${desc.digest}`;
            return { base: { ...base, resolvedName: uri }, material: { uri, digest: { sha256: desc.digest.replace(/^sha256:/, '') } } };
          });
        default:
          return memo(trees, entry.name, () => treeLayer(entry.name, source, signal)).then((t) => fromTree(t, platform));
      }
    },
  };

  function memo<T>(m: Map<string, Promise<T>>, key: string, make: () => Promise<T>): Promise<T> {
    let p = m.get(key);
    if (!p) {
      p = make();
      m.set(key, p);
    }
    return p;
  }

  function fromTree(t: TreeLayer, platform: Platform): ResolvedContext {
    const config = scratchConfig(platform);
    config.rootfs.diff_ids = [t.layer.diffID];
    const created = init.sourceDateEpoch !== undefined ? { created: isoSeconds(new Date(init.sourceDateEpoch * 1000)) } : {};
    config.history = [{ ...created, created_by: t.label, comment: 'buildkit.dockerfile.v0' }];
    return {
      base: { manifestDigest: t.key, config, layers: [t.layer], resolvedName: t.label },
      ...(t.material ? { material: t.material } : {}),
    };
  }

  async function treeLayer(name: string, source: Exclude<NamedContextSource, { kind: 'image' | 'oci-layout' }>, signal: AbortSignal): Promise<TreeLayer> {
    if (source.kind === 'local') {
      const dir = path.resolve(source.path);
      // a local directory keeps a stat-keyed hash cache as the main context does: an unchanged
      // file is not read again (git checkouts and downloads are new directories every time)
      const { HashCache } = await import('../context/hash-cache.js');
      const hashCache = HashCache.load(HashCache.fileFor(init.store.layout.contextHashes, dir));
      const t = await layerOf(name, dir, 'local', true, hashCache);
      try {
        hashCache.save();
      } catch {
        // the hash cache only saves time
      }
      return { ...t, label: `context ${name}: ${dir}` };
    }
    await mkdir(init.store.layout.tmp, { recursive: true });
    const tmp = await mkdtemp(path.join(init.store.layout.tmp, 'context-'));
    try {
      if (source.kind === 'git') {
        const { checkoutGit } = await import('./context-source.js');
        const { dir, gitCommit } = await checkoutGit(source.url, tmp, signal);
        const git: GitCheckout = { context: name, url: source.url, commit: gitCommit };
        gitCheckouts.push(git);
        // BuildKit's git source applies no .dockerignore to a named context
        const t = await layerOf(name, dir, 'git', false);
        return { ...t, label: `context ${name}: ${source.url}@${gitCommit}`, material: { uri: source.url, digest: { sha1: gitCommit } } };
      }
      const { downloadUrl } = await import('../steps/copy-url.js');
      const dl = path.join(tmp, 'dl');
      const dir = path.join(tmp, 'tree');
      await mkdir(dl);
      await mkdir(dir);
      const got = await downloadUrl(source.url, dl, undefined, signal);
      // as BuildKit's HTTP source: one file named `context`, mode 0600, mtime from Last-Modified
      await rename(got.file, path.join(dir, 'context'));
      const t = await layerOf(name, dir, 'http', false);
      return { ...t, label: `context ${name}: ${source.url}`, material: { uri: source.url, digest: { sha256: got.sha256 } } };
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /** The directory's files as one layer, from the cache when a layer of the same content was made before. */
  async function layerOf(name: string, dir: string, kind: string, dockerignore: boolean, hashCache?: HashCache): Promise<{ key: Digest; layer: LayerRef }> {
    const { BuildContext } = await import('../context/build-context.js');
    const { planCopy } = await import('../steps/copy.js');
    const view = BuildContext.open(dir, { ...(dockerignore ? {} : { ignoreFile: null }), label: `build context "${name}"` });
    const planned = await planCopy({ kind: 'COPY', sources: ['.'], dest: '/', workdir: '/', from: view, tmpDir: init.store.layout.tmp, now: init.sourceDateEpoch ?? Math.floor(Date.now() / 1000), ...(hashCache ? { hashCache } : {}) });
    try {
      const parts = { parent: 'named-context', op: { context: kind }, env: {}, inputs: [planned.inputDigest] };
      const key = stepCacheKey(parts);
      const hit = await init.cache.get(key);
      if (hit?.layer) return { key, layer: { descriptor: { mediaType: hit.layer.mediaType, digest: hit.layer.digest, size: hit.layer.size }, diffID: hit.layer.diffID } };
      const { writeLayer } = await import('../layer/index.js');
      const written = await writeLayer(planned.layerEntries(), init.store, init.layerOptions);
      const layer = { mediaType: written.mediaType, digest: written.digest, size: written.size, diffID: written.diffID };
      await init.cache.put({ version: 1, key, layer, history: { created_by: `context ${name}`, comment: 'buildkit.dockerfile.v0' } }, `named-context#${kind}#${name}`, parts);
      return { key, layer: { descriptor: { mediaType: layer.mediaType, digest: layer.digest, size: layer.size }, diffID: layer.diffID } };
    } finally {
      planned.dispose();
    }
  }
}
