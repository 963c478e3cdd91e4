import type { Descriptor, ImageConfig } from '../image/types.js';
import type { Digest } from '../image/digest.js';
import type { BuildEvent } from '../solver/events.js';
import type { Compression } from '../layer/types.js';
import type { ResourceLimits as SandboxLimits } from '../sandbox/bundle.js';
import type { Ulimit } from '../sandbox/rlimits.js';
import type { NetworkMode } from '../sandbox/network-mode.js';
import { KilnError } from '../errors/index.js';
import type { CacheExportSpec, CacheImportSpec } from '../cache/transfer.js';
import type { Annotation, AttestationOptions } from './attestations.js';

export interface SecretSource {
  id: string;
  /** A file whose bytes are the secret. */
  src?: string;
  /** An environment variable of the kiln process holding the secret. */
  env?: string;
}

export interface SshSource {
  id: string;
  /** Agent socket or key files; empty = $SSH_AUTH_SOCK. */
  paths: string[];
}

export type OutputSpec =
  | { type: 'image'; name?: string[]; push?: boolean }
  | { type: 'registry'; name?: string[] }
  | { type: 'oci'; dest: string; tar: boolean }
  | { type: 'docker'; dest: string }
  | { type: 'local'; dest: string }
  | { type: 'tar'; dest: string };

/** Limits for every RUN: the sandbox's cgroup limits plus rlimits (`--ulimit`). */
export type ResourceLimits = SandboxLimits & { ulimits?: Ulimit[] };

/** `kiln build` as a typed object; the CLI is a thin layer over it. */
export interface BuildOptions {
  /** Build context directory. */
  context: string;
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
  root?: string;
  compression?: Compression;
  compressionLevel?: number;
  /** Defaults to $SOURCE_DATE_EPOCH. */
  sourceDateEpoch?: number;
  explainCache?: boolean;
  insecureRegistries?: string[];
  registryMirrors?: string[];
  /** Entitlements, e.g. `security.insecure`. */
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

/** `id=ID,src=PATH` | `id=ID,env=VAR` | `id=ID` (then src is the id as a file? no: env of the same name, as buildx). */
export function parseSecretSpec(spec: string): SecretSource {
  const fields = csvFields(spec);
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

export function parseOutputSpec(spec: string): OutputSpec {
  const fields = csvFields(spec);
  const type = fields.get('type') ?? (fields.size === 0 ? undefined : 'local');
  const dest = fields.get('dest');
  const need = (): string => {
    if (!dest) throw new KilnError('USAGE', `invalid --output "${spec}": type=${type} needs dest=`);
    return dest;
  };
  switch (type) {
    case 'image': {
      const name = fields.get('name');
      return { type: 'image', ...(name ? { name: name.split(',') } : {}), push: fields.get('push') === 'true' };
    }
    case 'registry': {
      const name = fields.get('name');
      return { type: 'registry', ...(name ? { name: name.split(',') } : {}) };
    }
    case 'oci':
      return { type: 'oci', dest: need(), tar: fields.get('tar') !== 'false' };
    case 'docker':
      return { type: 'docker', dest: need() };
    case 'local':
      return { type: 'local', dest: need() };
    case 'tar':
      return { type: 'tar', dest: need() };
    default:
      throw new KilnError('USAGE', `invalid --output "${spec}": type must be image, registry, oci, docker, local or tar`);
  }
}

/** buildx-style `k=v,k2=v2`, with `"…"` quoting for values holding commas. */
function csvFields(spec: string): Map<string, string> {
  const out = new Map<string, string>();
  let i = 0;
  while (i < spec.length) {
    let field = '';
    let quoted = false;
    for (; i < spec.length; i++) {
      const c = spec[i]!;
      if (c === '"') quoted = !quoted;
      else if (c === ',' && !quoted) break;
      else field += c;
    }
    i++;
    if (!field) continue;
    const eq = field.indexOf('=');
    if (eq === -1) out.set(field.toLowerCase(), 'true');
    else out.set(field.slice(0, eq).toLowerCase(), field.slice(eq + 1));
  }
  return out;
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

export function parseByteSize(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new KilnError('USAGE', `invalid size "${s}" (e.g. 512m, 2g)`);
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };
  return Math.round(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}
