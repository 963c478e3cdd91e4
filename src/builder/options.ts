import type { Descriptor, ImageConfig } from '../image/types.js';
import type { Digest } from '../image/digest.js';
import type { BuildEvent } from '../events/index.js';
import type { Compression } from '../layer/types.js';
import type { ExtraHost, ResourceLimits as SandboxLimits } from '../sandbox/bundle.js';
import type { Ulimit } from '../sandbox/rlimits.js';
import type { NetworkMode } from '../sandbox/network-mode.js';
import { KilnError } from '../errors/index.js';
import { specFields } from '../spec/csv.js';
import { checkCompressionLevel } from '../layer/compression-level.js';

export { checkCompressionLevel };
import { parseSize } from '../spec/size.js';
import type { CacheExportSpec, CacheImportSpec } from '../cache/spec.js';
import type { Annotation, AttestationOptions } from './attestations.js';
import type { Store } from '../store/store.js';
import { parseNamedContext, type GitCheckout } from './named-contexts.js';
import type { SecretSource } from '../steps/run-secret.js';
import type { SshSource } from '../steps/run-ssh.js';

export type { SecretSource } from '../steps/run-secret.js';
export type { SshSource } from '../steps/run-ssh.js';

/**
 * How an output wants its layers (`-o …,compression=zstd,compression-level=19,force-compression=true`);
 * unset fields fall back to the build's `compression`, `compressionLevel` and `forceCompression`.
 */
export interface LayerCompressionAttrs {
  compression?: Compression;
  compressionLevel?: number;
  /** Also re-compress the base image's layers (by default they keep the compression they were pulled in). */
  forceCompression?: boolean;
}

export type OutputSpec =
  | ({ type: 'image'; name?: string[]; push?: boolean } & LayerCompressionAttrs)
  | ({ type: 'registry'; name?: string[] } & LayerCompressionAttrs)
  /** `tar` defaults to true: one OCI archive file; false writes an OCI layout directory. */
  | ({ type: 'oci'; dest: string; tar?: boolean } & LayerCompressionAttrs)
  | { type: 'docker'; dest: string }
  | { type: 'local'; dest: string }
  | { type: 'tar'; dest: string };

/** Limits for every RUN: the sandbox's cgroup limits plus rlimits (`--ulimit`). */
export type ResourceLimits = SandboxLimits & { ulimits?: Ulimit[]; extraHosts?: ExtraHost[] };

/** `kiln build` as a typed object; the CLI is a thin layer over it. */
export interface BuildOptions {
  /** Build context directory. */
  context: string;
  /**
   * Where a remote context came from (a git URL with its commit as `sha1`, a tarball URL with its `sha256`):
   * provenance names it as the config source and a material instead of a digest of the directory.
   */
  contextSource?: { uri: string; digest: Record<string, string> };
  /**
   * The context came from elsewhere (a tar on stdin, a download, a git checkout: what
   * `openContextSource` marks `untrusted`): its Dockerfile and ignore files are resolved inside it,
   * as BuildKit reads them from the context's snapshot, never through a link to a host file.
   */
  untrustedContext?: boolean;
  /** Dockerfile path (default `<context>/Dockerfile`); ignored when `dockerfileText` is given. */
  file?: string;
  /** Dockerfile content given directly (e.g. from stdin); `fileName` names it in errors. */
  dockerfileText?: string;
  fileName?: string;
  tags?: string[];
  buildArgs?: Record<string, string>;
  target?: string;
  noCache?: boolean;
  noCacheFilter?: string[];
  pull?: boolean;
  labels?: Record<string, string>;
  /** Target platform(s), comma-separated (`linux/amd64,linux/arm64`); default: the host. */
  platform?: string;
  /** Target platforms as a list (wins over `platform`); two or more make an OCI index with one manifest per platform. */
  platforms?: string[];
  secrets?: SecretSource[];
  ssh?: SshSource[];
  /** RUN's network when the Dockerfile does not choose (default `default`); `host` here grants `RUN --network=host` too, as in buildx. */
  network?: NetworkMode;
  outputs?: OutputSpec[];
  push?: boolean;
  iidfile?: string;
  metadataFile?: string;
  jobs?: number;
  /** Store root directory (default: see `defaultRoot`); ignored when `store` is given. */
  root?: string;
  /**
   * `--build-context NAME=VALUE`, VALUE as buildx spells it: a directory,
   * `docker-image://REF`, `oci-layout://PATH[:TAG][@DIGEST]`, a git URL or an
   * http(s) URL (see `NamedContextSource`). `FROM NAME`, `COPY --from=NAME` and
   * `RUN --mount from=NAME` use it, and it replaces a stage named NAME.
   */
  buildContexts?: Record<string, string>;
  /** An open store, as `pull` and `push` take; the build leaves it open. */
  store?: Store;
  /** Layer compression of the image (default gzip); layers from the cache are re-compressed when they differ. */
  compression?: Compression;
  compressionLevel?: number;
  /** Re-compress the base image's layers too when they are in another compression (BuildKit's `force-compression`). */
  forceCompression?: boolean;
  /** Defaults to $SOURCE_DATE_EPOCH. */
  sourceDateEpoch?: number;
  explainCache?: boolean;
  insecureRegistries?: string[];
  registryMirrors?: string[];
  /**
   * Entitlements (`--allow`): `network.host` permits `RUN --network=host`,
   * `security.insecure` permits `RUN --security=insecure`. A RUN asking for
   * one the build does not allow fails before any step runs; an unknown name is a usage error.
   */
  allow?: string[];
  limits?: ResourceLimits;
  runtime?: string;
  /** Size cap for the store after the build (bytes); 0 disables; default: $KILN_GC_KEEP_STORAGE, else a tenth of the disk (at least 2 GiB). */
  gcKeepStorage?: number;
  /** Caches to read step results from (`--cache-from`); a broken one only warns. */
  cacheFrom?: CacheImportSpec[];
  /** Where to write the build cache afterwards (`--cache-to`). */
  cacheTo?: CacheExportSpec[];
  /** SBOM and provenance attestations (`--sbom`, `--provenance`, `--attest`); provenance mode=min is on by default when pushing, as in buildx. */
  attestations?: AttestationOptions;
  /** `--annotation`: OCI annotations on the manifest, the index or their descriptors. */
  annotations?: Annotation[];
  /**
   * `--default-annotations`: `org.opencontainers.image.created` (from SOURCE_DATE_EPOCH when set) on the
   * manifests, the index and an OCI layout's index.json entry, as BuildKit's OCI exporter writes it; for a git
   * context also `org.opencontainers.image.source` and `.revision`. An `--annotation` of the same key wins.
   */
  defaultAnnotations?: boolean;
  /** A cosign-format private key (file path): what is pushed gets signed (password from COSIGN_PASSWORD). */
  signKey?: string;
  onEvent?: (e: BuildEvent) => void;
  signal?: AbortSignal;
}

export interface BuildResult {
  /** Digest of the image config (what `docker images` calls the image ID). */
  imageId: Digest;
  manifestDigest: Digest;
  descriptor: Descriptor;
  tags: string[];
  config: ImageConfig;
  /** Steps served from the cache / executed. */
  cachedSteps: number;
  executedSteps: number;
  /**
   * Multi-platform builds: the index's digest (also `imageId`, `manifestDigest`
   * and `descriptor.digest`; `config` is the first platform's) and one result
   * per platform, in the order asked for.
   */
  indexDigest?: Digest;
  platforms?: PlatformResult[];
  /** Git repositories the build checked out (a git context given as `contextSource` with a `sha1` digest, named contexts) and their commits. */
  gitCheckouts?: GitCheckout[];
}

/** One platform's image of a multi-platform build. */
export interface PlatformResult {
  /** Normalised, e.g. `linux/arm64`, `linux/arm/v7`. */
  platform: string;
  imageId: Digest;
  manifestDigest: Digest;
  /** The manifest's descriptor, with its platform. */
  descriptor: Descriptor;
  config: ImageConfig;
}

/** The attributes buildx's --secret takes. */
const SECRET_ATTRS = ['id', 'type', 'src', 'source', 'env'];

/** `id=ID,src=PATH` | `id=ID,env=VAR` | `id=ID` (then src is the id as a file? no: env of the same name, as buildx). */
export function parseSecretSpec(spec: string): SecretSource {
  const fields = specFields(spec, '--secret');
  for (const k of fields.keys()) {
    if (!SECRET_ATTRS.includes(k)) throw new KilnError('USAGE', `invalid --secret "${spec}": unknown attribute "${k}"; known: ${SECRET_ATTRS.join(', ')}`);
  }
  const id = fields.get('id');
  if (!id) throw new KilnError('USAGE', `invalid --secret "${spec}": missing id=`);
  const s: SecretSource = { id };
  const src = fields.get('src') ?? fields.get('source');
  const env = fields.get('env');
  if (src) s.src = src;
  if (env) s.env = env;
  if (!src && !env) s.env = id;
  const type = fields.get('type');
  if (type && type !== 'file' && type !== 'env') throw new KilnError('USAGE', `invalid --secret "${spec}": type must be file or env`);
  return s;
}

/** `default` | `default=/path/sock` | `id=path1,path2`. */
export function parseSshSpec(spec: string): SshSource {
  const eq = spec.indexOf('=');
  if (eq === -1) return { id: spec, paths: [] };
  return { id: spec.slice(0, eq), paths: spec.slice(eq + 1).split(',').filter(Boolean) };
}

const COMPRESSION_ATTRS = ['compression', 'compression-level', 'force-compression'];
/** The attributes each output type takes; anything else is an error, never silently ignored. */
const OUTPUT_ATTRS: Record<OutputSpec['type'], string[]> = {
  image: ['type', 'name', 'push', ...COMPRESSION_ATTRS],
  registry: ['type', 'name', 'push', ...COMPRESSION_ATTRS],
  oci: ['type', 'dest', 'tar', ...COMPRESSION_ATTRS],
  docker: ['type', 'dest'],
  local: ['type', 'dest'],
  tar: ['type', 'dest'],
};

/**
 * `-o` as buildx spells it: `type=…,key=value,…`, or a bare path meaning
 * `type=local,dest=PATH` (`-` writes the file system as a tar to stdout).
 */
export function parseOutputSpec(spec: string): OutputSpec {
  if (spec !== '' && !spec.includes('=') && !spec.includes(',')) return spec === '-' ? { type: 'tar', dest: '-' } : { type: 'local', dest: spec };
  const fields = specFields(spec, '--output');
  const bad = (why: string) => new KilnError('USAGE', `invalid --output "${spec}": ${why}`);
  const rawType = fields.get('type') ?? (fields.size === 0 ? undefined : 'local');
  if (rawType === undefined || !(rawType in OUTPUT_ATTRS)) throw bad('type must be image, registry, oci, docker, local or tar');
  const type = rawType as OutputSpec['type'];
  const known = OUTPUT_ATTRS[type];
  for (const k of fields.keys()) {
    if (known.includes(k)) continue;
    const why = COMPRESSION_ATTRS.includes(k) ? ` (type=${type} ${type === 'docker' ? 'writes uncompressed layer tars' : 'writes no image layers'})` : '';
    throw bad(`unknown attribute "${k}" for type=${type}${why}; known: ${known.filter((a) => a !== 'type').join(', ')}`);
  }
  const dest = fields.get('dest');
  const need = (): string => {
    if (!dest) throw bad(`type=${type} needs dest=`);
    return dest;
  };
  const bool = (k: string): boolean | undefined => {
    const v = fields.get(k);
    if (v === undefined) return undefined;
    const b = parseBoolAttr(v);
    if (b === undefined) throw bad(`${k} must be true or false, not "${v}"`);
    return b;
  };
  const compression = (): LayerCompressionAttrs => {
    const out: LayerCompressionAttrs = {};
    const c = fields.get('compression');
    if (c !== undefined) out.compression = parseCompression(c, `--output "${spec}"`);
    const level = fields.get('compression-level');
    if (level !== undefined) {
      if (!/^\d+$/.test(level)) throw bad(`compression-level must be an integer, not "${level}"`);
      out.compressionLevel = Number(level);
      checkCompressionLevel(out.compression ?? 'gzip', out.compressionLevel, `--output "${spec}"`, out.compression === undefined);
    }
    // buildx: a bare `force-compression` means true
    const force = bool('force-compression');
    if (force !== undefined) out.forceCompression = force;
    return out;
  };
  const names = (): { name?: string[] } => {
    const name = fields.get('name');
    return name ? { name: name.split(',').filter(Boolean) } : {};
  };
  switch (type) {
    case 'image':
      return { type, ...names(), push: bool('push') ?? false, ...compression() };
    case 'registry':
      if (bool('push') === false) throw bad('type=registry always pushes (use type=image for push=false)');
      return { type, ...names(), ...compression() };
    case 'oci':
      return { type, dest: need(), tar: bool('tar') ?? true, ...compression() };
    case 'docker':
    case 'local':
    case 'tar':
      return { type, dest: need() };
  }
}

/** Go's strconv.ParseBool, as buildx reads boolean attributes; '' (a bare key) is true. */
function parseBoolAttr(v: string): boolean | undefined {
  if (['', '1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  return undefined;
}

/** `gzip`, `zstd` or `uncompressed`; BuildKit's `estargz` is named as unsupported. */
export function parseCompression(v: string, where: string): Compression {
  if (v === 'gzip' || v === 'zstd' || v === 'uncompressed') return v;
  if (v === 'estargz') throw new KilnError('UNSUPPORTED', `${where}: compression=estargz is not supported by kiln (gzip, zstd or uncompressed)`);
  throw new KilnError('USAGE', `${where}: compression must be gzip, zstd or uncompressed, not "${v}"`);
}

/** `--build-arg K=V`, or bare `K` taking the value from the environment (skipped when unset, as docker does). */
export function parseBuildArgs(specs: string[], env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of specs) {
    const eq = s.indexOf('=');
    if (eq === -1) {
      const v = env[s];
      if (v !== undefined) out[s] = v;
    } else {
      out[s.slice(0, eq)] = s.slice(eq + 1);
    }
  }
  return out;
}

/** A size flag (`--memory 512m`, `--shm-size 64m`): see spec/size.ts for the units. */
export function parseByteSize(s: string, flag = 'size'): number {
  return parseSize(s, flag);
}

/** `--add-host NAME:IP` (buildx also takes `NAME=IP`); the name and address may not hold anything that would start another hosts line. */
export function parseAddHost(spec: string): ExtraHost {
  const m = /^([A-Za-z0-9_.-]+)[:=](.+)$/.exec(spec);
  const ip = m?.[2] ?? '';
  const isIp = /^\d{1,3}(\.\d{1,3}){3}$/.test(ip) || /^[0-9A-Fa-f:]+(%[A-Za-z0-9]+)?$/.test(ip.replace(/^\[|\]$/g, ''));
  if (ip === 'host-gateway') throw new KilnError('UNSUPPORTED', '--add-host NAME:host-gateway needs a daemon-configured gateway; give the address');
  if (!m || !isIp) throw new KilnError('USAGE', `invalid --add-host "${spec}" (want NAME:IP, e.g. db:10.0.0.5)`);
  return { name: m[1]!, ip: ip.replace(/^\[|\]$/g, '') };
}

/**
 * `--build-context NAME=VALUE` → [name, VALUE]; VALUE is checked now (a
 * directory, `docker-image://`, `oci-layout://`, a git or http(s) URL), so a
 * typo fails before the build.
 */
export function parseBuildContext(spec: string): [string, string] {
  const eq = spec.indexOf('=');
  const name = eq > 0 ? spec.slice(0, eq).trim().toLowerCase() : '';
  const value = eq > 0 ? spec.slice(eq + 1).trim() : '';
  if (!name || !value || !/^[a-z0-9][a-z0-9._/:-]*$/.test(name)) throw new KilnError('USAGE', `invalid --build-context "${spec}" (want NAME=VALUE, e.g. base=docker-image://alpine:3.20)`);
  parseNamedContext(value);
  return [name, value];
}
