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
  platform: string;
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

/**
 * SLSA provenance for one image, shaped like BuildKit's (v0.2 by default):
 * invocation parameters, materials with digests, start/finish times and
 * completeness flags. mode=min leaves out build-arg values and the step list;
 * mode=max adds them, with each step's cache key, whether it was a cache hit
 * and, for RUN steps, the CPU time and peak memory kiln measured — data no
 * other builder records. Secret values are never part of a BuildRecord.
 */
export function provenancePredicate(rec: BuildRecord, mode: ProvenanceMode, version: ProvenanceVersion = 'v0.2'): { predicateType: string; predicate: unknown } {
  const args = mode === 'max' ? { ...rec.args } : Object.fromEntries(Object.keys(rec.args).map((k) => [k, '']));
  const parameters: Record<string, unknown> = {
    frontend: 'dockerfile.v0',
    args: { ...(mode === 'max' ? args : {}), ...(rec.target ? { target: rec.target } : {}) },
    locals: [{ name: 'context' }, { name: 'dockerfile' }],
  };
  if (mode === 'min') parameters.argNames = Object.keys(rec.args).sort();
  if (rec.secrets.length) parameters.secrets = rec.secrets.map((id) => ({ id }));
  if (rec.ssh.length) parameters.ssh = rec.ssh.map((id) => ({ id }));
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
          externalParameters: { configSource: { path: rec.dockerfile.path, digest: { sha256: rec.dockerfile.digest.replace(/^sha256:/, '') } }, request: parameters },
          internalParameters: { platform: rec.platform },
          resolvedDependencies: rec.materials,
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
      materials: rec.materials,
      invocation: {
        configSource: { entryPoint: rec.dockerfile.path, digest: { sha256: rec.dockerfile.digest.replace(/^sha256:/, '') } },
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
