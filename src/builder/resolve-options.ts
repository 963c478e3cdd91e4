import path from 'node:path';
import type { Platform } from '../image/types.js';
import { formatPlatform, hostPlatform, parsePlatformList } from '../image/platform.js';
import { KilnError } from '../errors/index.js';
import { parseReference } from '../registry/reference.js';
import { NETWORK_HOST_ENTITLEMENT, parseNetworkMode } from '../sandbox/network-mode.js';
import { parseEntitlements } from '../steps/entitlements.js';
import type { RunPolicy } from '../steps/run-policy.js';
import type { LayerWriteOptions } from '../layer/types.js';
import type { CacheExportSpec, CacheImportSpec } from '../cache/spec.js';
import type { RegistryAccess } from '../cache/remote/index.js';
import type { BuildEvent } from '../events/index.js';
import type { Store } from '../store/store.js';
import { tagRefusal } from '../store/ref-names.js';
import { imageCompression, type CompressionPolicy } from './outputs.js';
import type { Annotation, AttestationOptions } from './attestations.js';
import type { BuildOptions, OutputSpec } from './options.js';

/** Where the Dockerfile comes from and how errors name it. */
export interface DockerfileSource {
  /** The build context, absolute. */
  contextDir: string;
  /** Dockerfile content given directly (wins over `file`). */
  text?: string;
  /** The Dockerfile's path, absolute; default `<contextDir>/Dockerfile`. */
  file?: string;
  /** The name errors and provenance use. */
  fileName: string;
  /** A git or URL context: where it came from, with its commit (`sha1`) or archive digest (`sha256`), for provenance. */
  origin?: { uri: string; digest: Record<string, string> };
  /** The context came from elsewhere: files read from it by name are resolved inside it (BuildOptions.untrustedContext). */
  contained?: boolean;
}

/** How the build writes its layers; the outputs' own compression is theirs (`OutputSettings`). */
export interface LayerSettings {
  /** The compression of the image under the build's tags, which every layer the build makes is written in. */
  compression: CompressionPolicy;
  /** SOURCE_DATE_EPOCH: file times in new layers and the image's `created`. */
  sourceDateEpoch?: number;
}

export interface OutputSettings {
  /** `-t`, normalised (`alpine` → `docker.io/library/alpine:latest`). */
  tags: string[];
  specs: OutputSpec[];
  /** `--push`: push the tags. */
  push: boolean;
  /** Whether anything is pushed (`--push`, `type=registry`, `type=image,push=true`). */
  pushing: boolean;
  iidfile?: string;
  labels: Record<string, string>;
  annotations: Annotation[];
  /** See `BuildOptions.defaultAnnotations`. */
  defaultAnnotations: boolean;
  /** As asked for; provenance is added when pushing (see `effectiveAttestations`). */
  attestations?: AttestationOptions;
  /** Signs what is pushed. */
  signKey?: string;
}

export interface CacheSettings {
  /** `--no-cache`: no step is looked up (they are still recorded). */
  disabled: boolean;
  /** `--no-cache-filter`: stage names (lower-case) or indexes. */
  filter: Set<string>;
  explain: boolean;
  from: CacheImportSpec[];
  to: CacheExportSpec[];
}

/**
 * The public `BuildOptions`, validated once and split by who uses it: the
 * steps get the RUN policy and layer settings, the image source and the
 * caches the registry access, the exporters the output settings. Nothing
 * below the build sees the options bag.
 */
export interface ResolvedBuildOptions {
  source: DockerfileSource;
  /** Target platforms, normalised, duplicates dropped; two or more make an index. */
  platforms: Platform[];
  target?: string;
  buildArgs: Record<string, string>;
  /** `--build-context NAME=VALUE` as buildx spells VALUE (see `NamedContextSource`), by lower-case name. */
  buildContexts: Record<string, string>;
  policy: RunPolicy;
  layers: LayerSettings;
  registry: RegistryAccess & { pull: boolean };
  outputs: OutputSettings;
  cache: CacheSettings;
  /** Stages built at once. */
  jobs?: number;
  /** See `BuildOptions.gcKeepStorage`. */
  gcKeepStorage?: number;
  /** An open store, or the root of one to open. */
  store?: Store;
  root?: string;
  onEvent?: (e: BuildEvent) => void;
  signal?: AbortSignal;
}

/**
 * Validates `options` once, before anything is read or started: every
 * invalid value is a one-line USAGE (or UNSUPPORTED) error naming the
 * option. The CLI resolves the options it mapped from its flags with this too.
 */
export function resolveBuildOptions(options: BuildOptions, env: NodeJS.ProcessEnv = process.env): ResolvedBuildOptions {
  const platforms = targetPlatforms(options);
  if (platforms.length > 1 && options.outputs?.some((o) => o.type === 'docker')) {
    throw new KilnError('USAGE', `--output type=docker holds one platform, and this build makes ${platforms.length} (${platforms.map(formatPlatform).join(', ')}): use type=oci, or build one --platform for the docker archive`);
  }
  const specs = options.outputs ?? [];
  for (const o of specs) if ((o.type === 'image' || o.type === 'registry') && o.name) for (const n of o.name) newTag(n, `--output type=${o.type},name=`);
  const push = Boolean(options.push);
  const sourceDateEpoch = options.sourceDateEpoch ?? epochFromEnv(env);
  return {
    source: dockerfileSource(options),
    platforms,
    ...(options.target ? { target: options.target } : {}),
    buildArgs: options.buildArgs ?? {},
    buildContexts: options.buildContexts ?? {},
    policy: runPolicy(options),
    layers: { compression: imageCompression(options), ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}) },
    registry: {
      insecureRegistries: options.insecureRegistries ?? [],
      mirrors: options.registryMirrors ?? [],
      pull: Boolean(options.pull),
      ...(options.signal ? { signal: options.signal } : {}),
    },
    outputs: {
      tags: (options.tags ?? []).map((t) => newTag(t, '-t ')),
      specs,
      push,
      pushing: push || specs.some((o) => o.type === 'registry' || (o.type === 'image' && o.push)),
      ...(options.iidfile ? { iidfile: options.iidfile } : {}),
      labels: options.labels ?? {},
      annotations: options.annotations ?? [],
      defaultAnnotations: Boolean(options.defaultAnnotations),
      ...(options.attestations ? { attestations: options.attestations } : {}),
      ...(options.signKey ? { signKey: options.signKey } : {}),
    },
    cache: {
      disabled: Boolean(options.noCache),
      filter: new Set((options.noCacheFilter ?? []).map((s) => s.toLowerCase())),
      explain: Boolean(options.explainCache),
      from: options.cacheFrom ?? [],
      to: options.cacheTo ?? [],
    },
    ...(options.jobs !== undefined ? { jobs: checkJobs(options.jobs) } : {}),
    ...(options.gcKeepStorage !== undefined ? { gcKeepStorage: options.gcKeepStorage } : {}),
    ...(options.store ? { store: options.store } : {}),
    ...(options.root !== undefined ? { root: options.root } : {}),
    ...(options.onEvent ? { onEvent: options.onEvent } : {}),
    ...(options.signal ? { signal: options.signal } : {}),
  };
}

/** The context and Dockerfile of `options` (the CLI resolves them again once a remote context is unpacked). */
export function dockerfileSource(options: Pick<BuildOptions, 'context' | 'contextSource' | 'untrustedContext' | 'file' | 'dockerfileText' | 'fileName'>): DockerfileSource {
  const contextDir = path.resolve(options.context);
  const origin = { ...(options.contextSource ? { origin: options.contextSource } : {}), ...(options.untrustedContext ? { contained: true } : {}) };
  if (options.dockerfileText !== undefined) return { contextDir, text: options.dockerfileText, fileName: options.fileName ?? 'Dockerfile', ...origin };
  return {
    contextDir,
    ...origin,
    file: options.file ? path.resolve(options.file) : path.join(contextDir, 'Dockerfile'),
    fileName: options.fileName ?? (options.file ?? 'Dockerfile'),
  };
}

/**
 * What RUN steps may do. `--network host` makes host networking the default
 * and grants `network.host`, as buildx adds the entitlement for it; every
 * other entitlement comes from `--allow` only.
 */
function runPolicy(options: BuildOptions): RunPolicy {
  // library callers are not type-checked at run time: the mode is checked as the CLI checks --network
  const network = parseNetworkMode(options.network ?? 'default', 'network');
  const entitlements = parseEntitlements(options.allow ?? []);
  if (network === 'host') entitlements.add(NETWORK_HOST_ENTITLEMENT);
  return {
    network,
    entitlements,
    secrets: options.secrets ?? [],
    ssh: options.ssh ?? [],
    ...(options.limits ? { limits: options.limits } : {}),
    ...(options.runtime ? { runtime: options.runtime } : {}),
  };
}

/** The layer writer's options for the build's own layers; `signal`, the build's, stops a layer half-written. */
export function layerWriteOptions(layers: LayerSettings, signal?: AbortSignal): LayerWriteOptions {
  return {
    compression: layers.compression.compression,
    ...(layers.compression.level !== undefined ? { compressionLevel: layers.compression.level } : {}),
    ...(layers.sourceDateEpoch !== undefined ? { sourceDateEpoch: layers.sourceDateEpoch } : {}),
    ...(signal ? { signal } : {}),
  };
}

/** `platforms` (library), else the comma-separated `platform`, else the host; normalised, duplicates dropped. */
function targetPlatforms(options: BuildOptions): Platform[] {
  const list = options.platforms?.length ? parsePlatformList(options.platforms) : options.platform ? parsePlatformList(options.platform) : [hostPlatform()];
  if (!list.length) throw new KilnError('USAGE', '--platform is empty');
  return list;
}

function epochFromEnv(env: NodeJS.ProcessEnv): number | undefined {
  const v = env['SOURCE_DATE_EPOCH'];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new KilnError('USAGE', `SOURCE_DATE_EPOCH must be a non-negative integer, not "${v}"`);
  return n;
}

/** A name the build gives its image (`flag` is how the user gave it), normalised; refused before the build as `kiln tag` refuses it (a digest, a name read as a digest). */
function newTag(text: string, flag: string): string {
  const ref = parseReference(text).toString();
  const refused = tagRefusal(ref);
  if (refused) throw new KilnError('USAGE', `${flag}${text}: ${refused}`);
  return ref;
}

function checkJobs(jobs: number): number {
  if (!Number.isFinite(jobs) || jobs < 0) throw new KilnError('USAGE', `jobs must be a non-negative number, not ${jobs}`);
  return jobs;
}
