import { KilnError } from '../errors/index.js';

/**
 * The one parser for buildx-style `k=v,k=v` specs (`-o`, `--cache-from/to`,
 * `--secret`, `--attest`, `--build-context`, `RUN --mount`). buildx and
 * BuildKit read them with Go's encoding/csv, so a field may be double-quoted
 * to hold commas, and `""` inside a quoted field is one quote.
 */

/** A quote left open: the spec is cut short or mistyped. */
export class CsvQuoteError extends Error {
  constructor(readonly spec: string) {
    super(`unterminated quote in "${spec}"`);
  }
}

/**
 * One CSV record split into fields. Lenient where encoding/csv's LazyQuotes
 * is: text after a closing quote, or a quote inside an unquoted field, is kept.
 */
export function splitCsv(s: string): string[] {
  if (!s.includes('"')) return s.split(',');
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new CsvQuoteError(s);
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i++];
      }
    }
    while (i < s.length && s[i] !== ',') field += s[i++];
    fields.push(field);
    if (i >= s.length) break;
    i++; // the comma
  }
  return fields;
}

/** One `key=value` field; a bare `key` has no value (buildx reads most bare keys as `true`). */
export interface CsvField {
  key: string;
  value: string | undefined;
}

/**
 * `k=v,k2="a,b",flag` → fields in order, keys lower-cased and trimmed, values
 * as written (empty fields are skipped, as buildx does).
 */
export function csvFields(spec: string): CsvField[] {
  const out: CsvField[] = [];
  for (const raw of splitCsv(spec)) {
    if (raw.trim() === '') continue;
    const eq = raw.indexOf('=');
    if (eq === -1) out.push({ key: raw.trim().toLowerCase(), value: undefined });
    else out.push({ key: raw.slice(0, eq).trim().toLowerCase(), value: raw.slice(eq + 1) });
  }
  return out;
}

/** csvFields as a map (a repeated key keeps its last value); a bare key maps to `true`. */
export function csvMap(spec: string): Map<string, string> {
  return new Map(csvFields(spec).map((f) => [f.key, f.value ?? 'true']));
}

/**
 * A command-line spec (`-o`, `--secret`, `--cache-to`, `--attest`…) as a map,
 * a bare key meaning `true`; a broken quote is a usage error naming the flag
 * and the spec. `trimValues` drops spaces around values, as kiln has always
 * read `--cache-*` and `--attest` values.
 */
export function specFields(spec: string, flag: string, opts: { trimValues?: boolean } = {}): Map<string, string> {
  try {
    return new Map(csvFields(spec).map((f) => [f.key, (opts.trimValues ? f.value?.trim() : f.value) ?? 'true']));
  } catch (e) {
    if (e instanceof CsvQuoteError) throw new KilnError('USAGE', `invalid ${flag} "${spec}": unterminated quote`);
    throw e;
  }
}
