import { PREDICATE_SLSA_V02, PREDICATE_SLSA_V1 } from './in-toto.js';
import { isoSeconds } from '../image/timestamp.js';

/** What a build knows about itself, in the terms provenance needs. Filled by the build, read here only. */
export interface BuildRecord {
  /** Builder identity (URI). */
  builderId: string;
  /** Dockerfile path as given, and the digest of its bytes. */
  dockerfile: { path: string; digest: string };
  /** Build arguments the user passed (values are written in mode=max only). */
  args: Record<string, string>;
  target?: string;
  /** The platform of the image this provenance is about. */
  platform: string;
  /** Every platform the build made (`linux/amd64,linux/arm64` for one index), as `--platform` asked. */
  platforms?: string[];
  /** `--label` values (written in mode=max only, as BuildKit's `label:` args). */
  labels?: Record<string, string>;
  /** A git or URL context: its URL and immutable digest (BuildKit's configSource uri/digest). */
  configSource?: { uri: string; digest: Record<string, string> };
  /** Every input the build read: bases by digest, the context, URLs and git sources. */
  materials: Array<{ uri: string; digest: Record<string, string> }>;
  startedOn: Date;
  finishedOn: Date;
  /** Names of secrets and SSH sockets mounted (never their values). */
  secrets: string[];
  ssh: string[];
  steps: Array<{
    /** The instruction as written, with its stage. */
    name: string;
    stage: string;
    cacheKey: string;
    cached: boolean;
    /** Measured for executed RUN steps. */
    cpuSeconds?: number;
    memoryPeakBytes?: number;
    durationMs?: number;
  }>;
}

export type ProvenanceMode = 'min' | 'max';
export type ProvenanceVersion = 'v0.2' | 'v1';

export const BUILD_TYPE = 'urn:kiln:buildtype:dockerfile:v1';

/** The material URI of a local build context; its digest is kiln's content hash of what COPY could read (after .dockerignore). */
export const LOCAL_CONTEXT_URI = 'urn:kiln:context:local';

/**
 * A URI as provenance may record it: the user and password of a URL (a token
 * in `https://x:TOKEN@host/repo.git`) removed, since provenance is published
 * with the image. Anything that is not a URL (scp-like `git@host:repo`) has none.
 */
export function redactUri(uri: string): string {
  try {
    const u = new URL(uri);
    if (!u.username && !u.password) return uri;
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return uri;
  }
}

/**
 * SLSA provenance for one image, shaped like BuildKit's (v0.2 by default):
 * invocation parameters, materials with digests, start/finish times and
 * completeness flags. As in BuildKit, mode=min leaves out build-arg and label
 * values, the secret and SSH ids and the step list (kiln adds the build-arg
 * names, never their values); mode=max adds them, with each step's cache key,
 * whether it was a cache hit and, for RUN steps, the CPU time and peak memory
 * kiln measured — data no other builder records. Secret values are never part
 * of a BuildRecord.
 */
export function provenancePredicate(rec: BuildRecord, mode: ProvenanceMode, version: ProvenanceVersion = 'v0.2'): { predicateType: string; predicate: unknown } {
  // the keys BuildKit's dockerfile frontend receives: build-arg:NAME, label:NAME, target, platform, filename
  const args: Record<string, string> = {};
  if (mode === 'max') {
    for (const [k, v] of Object.entries(rec.args)) args[`build-arg:${k}`] = v;
    for (const [k, v] of Object.entries(rec.labels ?? {})) args[`label:${k}`] = v;
  }
  args.filename = rec.dockerfile.path;
  if (rec.target) args.target = rec.target;
  if (rec.platforms?.length) args.platform = rec.platforms.join(',');
  const parameters: Record<string, unknown> = {
    frontend: 'dockerfile.v0',
    args,
    locals: rec.configSource ? [] : [{ name: 'context' }, { name: 'dockerfile' }],
  };
  if (mode === 'min' && Object.keys(rec.args).length) parameters.argNames = Object.keys(rec.args).sort();
  if (mode === 'max' && rec.secrets.length) parameters.secrets = rec.secrets.map((id) => ({ id }));
  if (mode === 'max' && rec.ssh.length) parameters.ssh = rec.ssh.map((id) => ({ id }));
  const materials = rec.materials.map((m) => ({ uri: redactUri(m.uri), digest: m.digest }));
  const source = rec.configSource ? { uri: redactUri(rec.configSource.uri), digest: rec.configSource.digest } : undefined;
  const steps = rec.steps.map((s) => ({
    name: s.name,
    stage: s.stage,
    cacheKey: s.cacheKey,
    cached: s.cached,
    ...(s.durationMs !== undefined ? { durationMs: s.durationMs } : {}),
    ...(s.cpuSeconds !== undefined ? { cpuSeconds: s.cpuSeconds } : {}),
    ...(s.memoryPeakBytes !== undefined ? { memoryPeakBytes: s.memoryPeakBytes } : {}),
  }));
  const time = isoSeconds;
  if (version === 'v1') {
    return {
      predicateType: PREDICATE_SLSA_V1,
      predicate: {
        buildDefinition: {
          buildType: BUILD_TYPE,
          externalParameters: {
            configSource: source ? { ...source, path: rec.dockerfile.path } : { path: rec.dockerfile.path, digest: { sha256: rec.dockerfile.digest.replace(/^sha256:/, '') } },
            request: parameters,
          },
          internalParameters: { platform: rec.platform },
          resolvedDependencies: materials,
        },
        runDetails: {
          builder: { id: rec.builderId },
          metadata: { invocationId: rec.dockerfile.digest, startedOn: time(rec.startedOn), finishedOn: time(rec.finishedOn) },
          ...(mode === 'max' ? { byproducts: [{ name: 'steps', content: steps }] } : {}),
        },
      },
    };
  }
  return {
    predicateType: PREDICATE_SLSA_V02,
    predicate: {
      builder: { id: rec.builderId },
      buildType: BUILD_TYPE,
      materials,
      invocation: {
        configSource: source ? { ...source, entryPoint: rec.dockerfile.path } : { entryPoint: rec.dockerfile.path, digest: { sha256: rec.dockerfile.digest.replace(/^sha256:/, '') } },
        parameters,
        environment: { platform: rec.platform },
      },
      ...(mode === 'max' ? { buildConfig: { steps } } : {}),
      metadata: {
        buildStartedOn: time(rec.startedOn),
        buildFinishedOn: time(rec.finishedOn),
        completeness: { parameters: mode === 'max', environment: true, materials: true },
        reproducible: false,
      },
    },
  };
}
