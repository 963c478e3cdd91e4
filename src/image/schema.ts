import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv04Module, { type ValidateFunction } from 'ajv-draft-04';
import { KilnError } from '../errors/index.js';

/**
 * Validation of the JSON documents kiln writes against the OCI image-spec
 * schemas (draft-04), read in place from the shared conformance folder. The
 * schemas reach each other through nested `id`s, so every file is registered
 * under its bare name and under each URL alias, as upstream's Go loader does.
 */

export type OciDocumentKind = 'manifest' | 'index' | 'config' | 'descriptor' | 'layout';

const ROOTS: Record<OciDocumentKind, string> = {
  manifest: 'image-manifest-schema.json',
  index: 'image-index-schema.json',
  config: 'config-schema.json',
  descriptor: 'content-descriptor.json',
  layout: 'image-layout-schema.json',
};

const ALIASES: Record<string, string[]> = {
  'config-schema.json': ['https://opencontainers.org/schema/image/config'],
  'content-descriptor.json': ['https://opencontainers.org/schema/descriptor', 'https://opencontainers.org/schema/image/content-descriptor.json'],
  'defs-descriptor.json': [
    'https://opencontainers.org/schema/image/descriptor/mediaType',
    'https://opencontainers.org/schema/defs-descriptor.json',
    'https://opencontainers.org/schema/image/defs-descriptor.json',
  ],
  'defs.json': ['https://opencontainers.org/schema/defs.json', 'https://opencontainers.org/schema/image/defs.json', 'https://opencontainers.org/schema/image/descriptor/defs.json'],
  'image-index-schema.json': ['https://opencontainers.org/schema/image/index'],
  'image-layout-schema.json': ['https://opencontainers.org/schema/image/layout'],
  'image-manifest-schema.json': ['https://opencontainers.org/schema/image/manifest'],
};

/** `KILN_OCI_SCHEMA_DIR`, else `<repo root>/../shared/conformance/oci-image-spec-schema` (same from src/ and dist/). */
export function schemaDir(): string {
  return process.env['KILN_OCI_SCHEMA_DIR'] ?? fileURLToPath(new URL('../../../shared/conformance/oci-image-spec-schema/', import.meta.url));
}

// CJS module: under NodeNext the default import is module.exports, whose .default is the class
const Ajv04 = Ajv04Module.default;

let validators: Map<OciDocumentKind, ValidateFunction> | undefined;

function load(): Map<OciDocumentKind, ValidateFunction> {
  if (validators) return validators;
  const dir = schemaDir();
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch (e) {
    throw new KilnError('INTERNAL', `OCI schemas not found in ${dir}: ${(e as Error).message}`);
  }
  // draft-04 ids are URLs the schemas never fetch; validateFormats off for uri/date-time would hide errors, so keep formats on.
  const ajv = new Ajv04({ allErrors: true, strict: false, validateFormats: true, logger: false });
  ajv.addFormat('date-time', { validate: (s: string) => !Number.isNaN(Date.parse(s)) && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(s) });
  ajv.addFormat('uri', { validate: (s: string) => /^[A-Za-z][A-Za-z0-9+.-]*:/.test(s) });
  for (const f of files) {
    const schema = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
    // Nested ids would register the same sub-schemas once per alias (ajv refuses duplicates)
    // and move the base URI away from where the aliases live; the root id alone is enough.
    const body = stripIds(schema) as Record<string, unknown>;
    for (const name of [f, ...(ALIASES[f] ?? [])]) ajv.addSchema({ ...body, id: name }, name);
  }
  validators = new Map();
  for (const [kind, file] of Object.entries(ROOTS) as Array<[OciDocumentKind, string]>) {
    const v = ajv.getSchema(file);
    if (!v) throw new KilnError('INTERNAL', `OCI schema ${file} missing from ${dir}`);
    validators.set(kind, v);
  }
  return validators;
}

function stripIds(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripIds);
  if (!v || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) if (!(k === 'id' && typeof x === 'string')) out[k] = stripIds(x);
  return out;
}

/** Errors as `path: message` lines; empty when valid. Adds upstream's checks outside the schemas. */
export function validateOci(doc: unknown, kind: OciDocumentKind): string[] {
  const v = load().get(kind)!;
  const errs: string[] = [];
  if (!v(doc)) for (const e of v.errors ?? []) errs.push(`${e.instancePath || '/'}: ${e.message ?? 'invalid'}`);
  if (kind === 'config' && doc && typeof doc === 'object') {
    const env = (doc as { config?: { Env?: unknown } }).config?.Env;
    if (Array.isArray(env)) env.forEach((e, i) => typeof e === 'string' && !/^[^=]+=.*$/.test(e) && errs.push(`/config/Env/${i}: not NAME=value`));
  }
  walkSizes(doc, '', errs);
  return errs;
}

function walkSizes(v: unknown, path: string, errs: string[]): void {
  if (!v || typeof v !== 'object') return;
  if (Array.isArray(v)) return v.forEach((x, i) => walkSizes(x, `${path}/${i}`, errs));
  const o = v as Record<string, unknown>;
  if (typeof o['digest'] === 'string' && typeof o['size'] === 'number') {
    if (o['size'] < 0) errs.push(`${path}/size: negative`);
    // upstream checks the encoded part against the algorithm; the schema pattern alone accepts sha256:zz
    if (o['digest'].startsWith('sha256:') && !/^sha256:[a-f0-9]{64}$/.test(o['digest'])) errs.push(`${path}/digest: not a sha256 digest`);
  }
  for (const [k, x] of Object.entries(o)) if (k !== 'annotations') walkSizes(x, `${path}/${k}`, errs);
}

export function assertValidOci(doc: unknown, kind: OciDocumentKind): void {
  const errs = validateOci(doc, kind);
  if (errs.length) throw new KilnError('INTERNAL', `invalid OCI ${kind}: ${errs.join('; ')}`);
}
