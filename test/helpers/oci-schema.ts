import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv04Module, { type ValidateFunction } from 'ajv-draft-04';

/**
 * Validation of the JSON documents kiln writes against the OCI image-spec
 * schemas (draft-04). Tests use the copy in test/fixtures/oci-schemas;
 * `npm run conformance` passes the corpora's copy. Test-only: ajv is a dev
 * dependency and nothing under src/ validates at run time. The
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

/** The project's copy of the schemas. */
export const FIXTURE_SCHEMA_DIR = fileURLToPath(new URL('../fixtures/oci-schemas/', import.meta.url));

// CJS module: under NodeNext the default import is module.exports, whose .default is the class
const Ajv04 = Ajv04Module.default;

const loaded = new Map<string, Map<OciDocumentKind, ValidateFunction>>();

function load(dir: string): Map<OciDocumentKind, ValidateFunction> {
  const cached = loaded.get(dir);
  if (cached) return cached;
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
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
  const validators = new Map<OciDocumentKind, ValidateFunction>();
  for (const [kind, file] of Object.entries(ROOTS) as Array<[OciDocumentKind, string]>) {
    const v = ajv.getSchema(file);
    if (!v) throw new Error(`OCI schema ${file} missing from ${dir}`);
    validators.set(kind, v);
  }
  loaded.set(dir, validators);
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
export function validateOci(doc: unknown, kind: OciDocumentKind, schemaDir = FIXTURE_SCHEMA_DIR): string[] {
  const v = load(schemaDir).get(kind)!;
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
