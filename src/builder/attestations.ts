import { createHash } from 'node:crypto';
import { KilnError } from '../errors/index.js';
import { specFields } from '../spec/csv.js';
import { MediaType } from '../image/media-types.js';
import { formatPlatform } from '../image/platform.js';
import type { Descriptor, Index } from '../image/types.js';
import type { Image } from '../image/image.js';
import type { BuildRecord, ProvenanceMode, ProvenanceVersion, Statement } from '../attest/index.js';
import type { FsView } from '../context/fs-view.js';
import type { Store } from '../store/store.js';

/** What `--sbom`, `--provenance` and `--attest` ask for. `false` turns a default off. */
export interface AttestationOptions {
  /**
   * `scanStage` / `scanContext`: also scan every built stage / the context, as
   * `BUILDKIT_SBOM_SCAN_STAGE=true` / `BUILDKIT_SBOM_SCAN_CONTEXT=true` would (see plan/sbom-scan-args.ts).
   */
  sbom?: false | { scanStage?: boolean; scanContext?: boolean };
  provenance?: false | { mode: ProvenanceMode; version?: ProvenanceVersion; builderId?: string };
}

/**
 * Parses one `--attest` value (buildx: `type=sbom[,generator=…]`,
 * `type=provenance[,mode=min|max][,version=v0.2|v1]`, `disabled=true`) into the
 * options, merging with what earlier flags said. Unknown attributes are errors.
 */
export function parseAttestSpec(spec: string, into: AttestationOptions = {}): AttestationOptions {
  const fields = specFields(spec, '--attest', { trimValues: true });
  const type = fields.get('type');
  fields.delete('type');
  const disabled = fields.get('disabled') === 'true' || fields.get('enabled') === 'false';
  fields.delete('disabled');
  fields.delete('enabled');
  if (type === 'sbom') {
    const generator = fields.get('generator');
    fields.delete('generator');
    if (generator !== undefined) {
      throw new KilnError('USAGE', `--attest ${spec}: generator= names a scanner image BuildKit runs; kiln scans with its built-in scanners (dpkg, apk, rpm, npm, Python, Go), leave generator out`);
    }
    const scan: { scanStage?: boolean; scanContext?: boolean } = {};
    for (const [attr, key] of [['scan-stage', 'scanStage'], ['scan-context', 'scanContext']] as const) {
      const v = fields.get(attr);
      fields.delete(attr);
      if (v === undefined) continue;
      if (v !== 'true' && v !== 'false') throw new KilnError('USAGE', `--attest ${spec}: ${attr} must be true or false`);
      scan[key] = v === 'true';
    }
    rejectRest(fields, spec);
    into.sbom = disabled ? false : scan;
    return into;
  }
  if (type === 'provenance') {
    const mode = fields.get('mode') ?? 'min';
    if (mode !== 'min' && mode !== 'max') throw new KilnError('USAGE', `--attest ${spec}: mode must be min or max`);
    const version = fields.get('version') ?? 'v0.2';
    if (version !== 'v0.2' && version !== 'v1') throw new KilnError('USAGE', `--attest ${spec}: version must be v0.2 or v1`);
    const builderId = fields.get('builder-id');
    for (const k of ['mode', 'version', 'builder-id']) fields.delete(k);
    rejectRest(fields, spec);
    into.provenance = disabled ? false : { mode, version, ...(builderId ? { builderId } : {}) };
    return into;
  }
  throw new KilnError('USAGE', `--attest ${spec}: type must be sbom or provenance`);
}

function rejectRest(fields: Map<string, string>, spec: string): void {
  const k = [...fields.keys()][0];
  if (k !== undefined) throw new KilnError('USAGE', `--attest ${spec}: unknown attribute "${k}"`);
}

/** `--sbom VALUE` / `--provenance VALUE` are shorthands: `true`, `false`, or the attributes of `--attest type=…`. */
export function parseAttestShorthand(kind: 'sbom' | 'provenance', value: string | boolean, into: AttestationOptions = {}): AttestationOptions {
  if (value === true || value === 'true' || value === '') return parseAttestSpec(`type=${kind}`, into);
  if (value === false || value === 'false' || value === '0') return parseAttestSpec(`type=${kind},disabled=true`, into);
  return parseAttestSpec(`type=${kind},${value}`, into);
}

/** Which document an `--annotation` lands on (buildx's prefixes). */
export type AnnotationTarget = 'manifest' | 'index' | 'manifest-descriptor' | 'index-descriptor';

export interface Annotation {
  targets: AnnotationTarget[];
  /** Restricts a manifest annotation to one platform (`manifest[linux/arm64]:k=v`). */
  platform?: string;
  key: string;
  value: string;
}

/** `[TYPE[,TYPE…][\[PLATFORM\]]:]KEY=VALUE`, as `docker buildx build --annotation` reads it; the default target is the manifest. */
export function parseAnnotation(spec: string): Annotation {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new KilnError('USAGE', `--annotation ${spec}: expected [TYPE:]KEY=VALUE`);
  const head = spec.slice(0, eq);
  const value = spec.slice(eq + 1);
  const m = /^(?:([a-z,-]+)(?:\[([^\]]+)\])?:)?([^:]+)$/.exec(head);
  // keys may contain dots and slashes but a colon only after a known prefix
  if (!m) throw new KilnError('USAGE', `--annotation ${spec}: cannot read the key`);
  const targets = (m[1] ? m[1].split(',') : ['manifest']) as AnnotationTarget[];
  for (const t of targets) {
    if (!['manifest', 'index', 'manifest-descriptor', 'index-descriptor'].includes(t)) {
      throw new KilnError('USAGE', `--annotation ${spec}: unknown type "${t}" (manifest, index, manifest-descriptor, index-descriptor)`);
    }
  }
  const key = m[3]!.trim();
  if (!key) throw new KilnError('USAGE', `--annotation ${spec}: empty key`);
  return { targets, ...(m[2] ? { platform: m[2] } : {}), key, value };
}

export function annotationsFor(list: readonly Annotation[], target: AnnotationTarget, platform?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const a of list) {
    if (!a.targets.includes(target)) continue;
    if (a.platform && platform && a.platform !== platform) continue;
    out[a.key] = a.value;
  }
  return out;
}

/** One built image of the result, with what its attestations need. */
export interface BuiltImage {
  image: Image;
  descriptor: Descriptor;
  record: BuildRecord;
  /** Build stages and the context to scan besides the image (`BUILDKIT_SBOM_SCAN_STAGE` / `_CONTEXT`), by name. */
  extraSboms?: Array<{ name: string; view: () => Promise<FsView> }>;
}

/** A statement and the file `--output type=local` writes it to (BuildKit's names). */
export interface AttachedStatement {
  file: string;
  /** The platform of the image it is about (`linux/arm64`). */
  platform: string;
  statement: Statement;
}

/**
 * Wraps built images with their attestation manifests into one image index,
 * as BuildKit does when attestations are on: for each platform the image
 * manifest, then an `unknown/unknown` attestation manifest pointing at it.
 * Index and manifest-descriptor annotations are applied here.
 */
export async function attachAttestations(store: Store, built: BuiltImage[], opts: {
  attest: AttestationOptions;
  ref?: string;
  created: Date;
  annotations: readonly Annotation[];
  signal?: AbortSignal;
}): Promise<{ descriptor: Descriptor; statements: AttachedStatement[] }> {
  // imported here: a build without attestations (a cached rebuild above all) never loads the statement writers or the SBOM scanner
  const { provenancePredicate, statement, subjectName, writeAttestationManifest } = await import('../attest/index.js');
  const { extraSbomStatement, sbomStatement } = await import('../attest/sbom-statement.js');
  const manifests: Descriptor[] = [];
  const all: AttachedStatement[] = [];
  for (const b of built) {
    const c = b.image.config;
    const platform = formatPlatform({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) });
    const statements: AttachedStatement[] = [];
    const subject = { name: subjectName(opts.ref, platform), digest: b.descriptor.digest };
    if (opts.attest.provenance) {
      const p = provenancePredicate(b.record, opts.attest.provenance.mode, opts.attest.provenance.version ?? 'v0.2');
      statements.push({ file: 'provenance.json', platform, statement: statement(p.predicateType, subject, p.predicate) });
    }
    if (opts.attest.sbom) {
      // the image's own SBOM first: readers (buildx's .SBOM.SPDX) take the first SPDX statement as the image's
      statements.push({ file: 'sbom.spdx.json', platform, statement: await sbomStatement(store, b.image, { ...(opts.ref ? { ref: opts.ref } : {}), created: opts.created, ...(opts.signal ? { signal: opts.signal } : {}) }) });
      for (const extra of b.extraSboms ?? []) {
        const s = await extraSbomStatement(await extra.view(), subject, { name: extra.name, created: opts.created, ...(opts.signal ? { signal: opts.signal } : {}) });
        statements.push({ file: `sbom-${extra.name}.spdx.json`, platform, statement: s });
      }
    }
    const desc: Descriptor = { ...b.descriptor };
    const extra = annotationsFor(opts.annotations, 'manifest-descriptor', platform);
    if (Object.keys(extra).length) desc.annotations = { ...(desc.annotations ?? {}), ...extra };
    manifests.push(desc);
    if (statements.length) manifests.push((await writeAttestationManifest(store, b.descriptor, statements.map((s) => s.statement))).descriptor);
    all.push(...statements);
  }
  const index: Index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests };
  const ia = annotationsFor(opts.annotations, 'index');
  if (Object.keys(ia).length) index.annotations = ia;
  return { descriptor: await store.putJSON(index, MediaType.OCI_INDEX), statements: all };
}

/**
 * buildx's default: a minimal provenance attestation when the result is pushed,
 * unless the user said otherwise or BUILDX_NO_DEFAULT_ATTESTATIONS is set.
 */
export function effectiveAttestations(requested: AttestationOptions | undefined, pushing: boolean, env: NodeJS.ProcessEnv = process.env): AttestationOptions {
  const out: AttestationOptions = { ...(requested ?? {}) };
  const defaultsOff = Boolean(env['BUILDX_NO_DEFAULT_ATTESTATIONS']);
  if (out.provenance === undefined && pushing && !defaultsOff) out.provenance = { mode: 'min' };
  return out;
}

export function wantsAttestations(a: AttestationOptions): boolean {
  return Boolean(a.sbom) || Boolean(a.provenance);
}

/** A stable digest of the Dockerfile bytes, for provenance's configSource. */
export function dockerfileDigest(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}
