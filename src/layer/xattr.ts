import { errno, libc } from '../sys/libc.js';
import { KilnError } from '../errors/index.js';

/**
 * Extended attributes through libc (Node has no xattr API). The l* variants
 * act on a symlink itself, never on what it points to. Values are raw bytes:
 * security.capability is binary and must not pass through a string.
 */
type ListFn = (path: string, list: Buffer | null, size: number) => number;
type GetFn = (path: string, name: string, value: Buffer | null, size: number) => number;
type SetFn = (path: string, name: string, value: Buffer, size: number, flags: number) => number;

let fns: { list: ListFn; get: GetFn; set: SetFn } | undefined;

function bind(): { list: ListFn; get: GetFn; set: SetFn } {
  if (!fns) {
    const lib = libc();
    fns = {
      list: lib.func('intptr_t llistxattr(const char *path, void *list, size_t size)') as ListFn,
      get: lib.func('intptr_t lgetxattr(const char *path, const char *name, void *value, size_t size)') as GetFn,
      set: lib.func('int lsetxattr(const char *path, const char *name, const void *value, size_t size, int flags)') as SetFn,
    };
  }
  return fns;
}

const ENODATA = 61;
const ENOTSUP = 95;
const ERANGE = 34;

/** A failed xattr call, with its errno so callers can tell "not supported here" from real failures. */
export class XattrError extends KilnError {
  readonly errno: number;
  constructor(op: string, path: string, name: string | undefined, errno: number) {
    super('ARCHIVE', `${op} ${name ? `"${name}" ` : ''}on ${path} failed (errno ${errno})`);
    this.errno = errno;
  }
}

function fail(op: string, path: string, name: string | undefined, e: number): XattrError {
  return new XattrError(op, path, name, e);
}

export const ENOTSUP_ERRNO = 95;
export const EPERM_ERRNO = 1;

/** Names of the extended attributes of `path` (empty when the file system has none). */
export function listXattrs(path: string): string[] {
  const { list } = bind();
  for (;;) {
    const size = list(path, null, 0);
    if (size < 0) {
      const e = errno();
      if (e === ENOTSUP) return [];
      throw fail('llistxattr', path, undefined, e);
    }
    if (size === 0) return [];
    const buf = Buffer.alloc(size);
    const n = list(path, buf, size);
    if (n < 0) {
      if (errno() === ERANGE) continue; // grew between the two calls
      throw fail('llistxattr', path, undefined, errno());
    }
    return buf.toString('utf8', 0, n).split('\0').filter((s) => s !== '');
  }
}

/** The value of one attribute, or undefined when it is not set. */
export function getXattr(path: string, name: string): Buffer | undefined {
  const { get } = bind();
  for (;;) {
    const size = get(path, name, null, 0);
    if (size < 0) {
      const e = errno();
      if (e === ENODATA || e === ENOTSUP) return undefined;
      throw fail('lgetxattr', path, name, e);
    }
    const buf = Buffer.alloc(size);
    if (size === 0) return buf;
    const n = get(path, name, buf, size);
    if (n < 0) {
      if (errno() === ERANGE) continue;
      throw fail('lgetxattr', path, name, errno());
    }
    return buf.subarray(0, n);
  }
}

export function setXattr(path: string, name: string, value: Uint8Array): void {
  const { set } = bind();
  const buf = Buffer.from(value.buffer, value.byteOffset, value.length);
  if (set(path, name, buf, buf.length, 0) !== 0) throw fail('lsetxattr', path, name, errno());
}
