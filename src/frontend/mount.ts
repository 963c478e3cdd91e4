/**
 * `RUN --mount=<csv>` parsing, following BuildKit's runmount.go. Parsing runs
 * twice: at parse time without an expander (validates what can be validated
 * before variables are known) and from `expandInstruction` with one.
 */
import type { RunMount } from './instructions.js';
import { closest } from './suggest.js';
import { CsvQuoteError, splitCsv } from '../spec/csv.js';
import { parseRamSize } from '../spec/size.js';

export class MountError extends Error {
  constructor(message: string, readonly hint?: string) {
    super(message);
  }
}

const TYPES = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'] as const;
type MountType = (typeof TYPES)[number];
const KEYS = ['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'size', 'mode', 'uid', 'gid', 'src', 'dst', 'destination', 'dest', 'ro', 'rw', 'readwrite', 'env'];

/** Go encoding/csv for one record, through the program's one CSV parser. */
export function splitCSV(s: string): string[] {
  try {
    return splitCsv(s);
  } catch (e) {
    if (e instanceof CsvQuoteError) throw new MountError(`unterminated quote in mount "${s}"`);
    throw e;
  }
}

function parseBool(v: string, key: string): boolean {
  switch (v) {
    case '1': case 't': case 'T': case 'true': case 'TRUE': case 'True': return true;
    case '0': case 'f': case 'F': case 'false': case 'FALSE': case 'False': return false;
  }
  throw new MountError(`invalid value "${v}" for mount option ${key}`, 'expected true or false');
}

function parseUint(v: string, base: 8 | 10, key: string): number {
  const re = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!re.test(v)) throw new MountError(`invalid value "${v}" for mount option ${key}`, base === 8 ? 'expected an octal mode such as 0755' : 'expected a number');
  const n = parseInt(v, base);
  if (n > 0xffffffff) throw new MountError(`value "${v}" for mount option ${key} is out of range`);
  return n;
}

/** A tmpfs mount's `size=`, read as BuildKit reads it (docker/go-units RAMInBytes: binary multiples). */
function tmpfsSize(v: string): number {
  const n = parseRamSize(v);
  if (n === undefined) throw new MountError(`invalid size "${v}" for tmpfs mount`, 'expected e.g. 64m or 1g');
  return n;
}

/**
 * Parses one `--mount` value. Without `expand`, values holding `$` are not
 * validated (they are re-checked once expanded).
 */
export function parseMount(raw: string, expand?: (value: string) => string): RunMount {
  const fields = splitCSV(raw);
  let type: MountType = 'bind';
  let readonly: boolean | undefined;
  let required = false;
  let from: string | undefined;
  let source: string | undefined;
  let target: string | undefined;
  let id: string | undefined;
  let sharing: string | undefined;
  let mode: number | undefined;
  let uid: number | undefined;
  let gid: number | undefined;
  let size: number | undefined;
  let env: string | undefined;
  const deferred = (v: string): boolean => !expand && v.includes('$');

  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    let value = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') {
        readonly = true;
        continue;
      }
      if (key === 'readwrite' || key === 'rw') {
        readonly = false;
        continue;
      }
      if (key === 'required') {
        if (type !== 'secret' && type !== 'ssh') throw new MountError(`unexpected key 'required' for mount type '${type}'`);
        required = true;
        continue;
      }
    }
    if (expand) value = expand(value);
    switch (key) {
      case 'type': {
        const t = value.toLowerCase();
        if (!(TYPES as readonly string[]).includes(t)) {
          if (deferred(value)) break;
          const near = closest(t, TYPES);
          throw new MountError(`unsupported mount type "${value}"`, near ? `did you mean ${near}?` : `use one of ${TYPES.join(', ')}`);
        }
        type = t as MountType;
        break;
      }
      case 'from':
        from = value;
        break;
      case 'source': case 'src':
        source = value;
        break;
      case 'target': case 'dst': case 'destination': case 'dest':
        target = value;
        break;
      case 'readonly': case 'ro':
        if (!deferred(value)) readonly = parseBool(value, key);
        break;
      case 'readwrite': case 'rw':
        if (!deferred(value)) readonly = !parseBool(value, key);
        break;
      case 'required':
        if (type !== 'secret' && type !== 'ssh') throw new MountError(`unexpected key 'required' for mount type '${type}'`);
        if (!deferred(value)) required = parseBool(value, key);
        break;
      case 'sharing': {
        const s = value.toLowerCase();
        if (s !== '' && s !== 'shared' && s !== 'private' && s !== 'locked' && !deferred(value)) {
          throw new MountError(`unsupported sharing value "${value}"`, 'use shared, private or locked');
        }
        sharing = s || undefined;
        break;
      }
      case 'mode':
        if (!deferred(value)) mode = parseUint(value, 8, key);
        break;
      case 'uid':
        if (!deferred(value)) uid = parseUint(value, 10, key);
        break;
      case 'gid':
        if (!deferred(value)) gid = parseUint(value, 10, key);
        break;
      case 'id':
        id = value;
        break;
      case 'size':
        if (type !== 'tmpfs') throw new MountError(`unexpected key 'size' for mount type '${type}'`);
        if (!deferred(value)) size = tmpfsSize(value);
        break;
      case 'env':
        if (type !== 'secret') throw new MountError(`unexpected key 'env' for mount type '${type}'`);
        env = value;
        break;
      default: {
        const near = closest(key, KEYS);
        throw new MountError(`unexpected key '${key}' in '${field}'`, near ? `did you mean ${near}?` : undefined);
      }
    }
  }

  const fileInfo = type === 'secret' || type === 'ssh' || type === 'cache';
  if (!fileInfo) {
    if (mode !== undefined) throw new MountError(`mode not allowed for "${type}" type mounts`);
    if (uid !== undefined) throw new MountError(`uid not allowed for "${type}" type mounts`);
    if (gid !== undefined) throw new MountError(`gid not allowed for "${type}" type mounts`);
  }
  if (sharing !== undefined && type !== 'cache') throw new MountError(`invalid cache sharing set for ${type} mount`);

  switch (type) {
    case 'bind':
      if (!target) throw new MountError('mount target is required for bind mounts', 'add target=/path');
      return { type, raw, target, ...(source !== undefined ? { source } : {}), ...(from !== undefined ? { from } : {}), readonly: readonly ?? true };
    case 'cache':
      if (!target) throw new MountError('mount target is required for cache mounts', 'add target=/path');
      return {
        type, raw, target,
        ...(id !== undefined ? { id } : {}), ...(source !== undefined ? { source } : {}), ...(from !== undefined ? { from } : {}),
        readonly: readonly ?? false,
        sharing: (sharing ?? 'shared') as 'shared' | 'private' | 'locked',
        mode: mode ?? 0o755, uid: uid ?? 0, gid: gid ?? 0,
      };
    case 'tmpfs':
      if (!target) throw new MountError('mount target is required for tmpfs mounts', 'add target=/path');
      return { type, raw, target, ...(size !== undefined ? { size } : {}) };
    case 'secret': {
      if (from !== undefined) throw new MountError('secret mount should not have a from');
      if (!source && !target && !id && env === undefined) throw new MountError('invalid secret mount. one of source, target required', 'add id=<secret id>');
      if (source && id) throw new MountError("both source and id can't be set");
      const sid = id || source || basename(target ?? '');
      return {
        type, raw, id: sid,
        ...(target ? { target } : env === undefined ? { target: `/run/secrets/${sid}` } : {}),
        ...(env !== undefined ? { env } : {}),
        required, mode: mode ?? 0o400, uid: uid ?? 0, gid: gid ?? 0,
      };
    }
    case 'ssh':
      if (from !== undefined) throw new MountError('ssh mount should not have a from');
      return {
        type, raw, id: id || source || 'default',
        ...(target ? { target } : {}),
        required, mode: mode ?? 0o600, uid: uid ?? 0, gid: gid ?? 0,
      };
  }
}

function basename(p: string): string {
  const parts = p.split('/').filter(Boolean);
  return parts[parts.length - 1] ?? '';
}
