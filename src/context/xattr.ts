import { libc } from '../sys/libc.js';

/**
 * Extended attributes of a path without following a final symlink. Node has
 * no xattr API; overlay's opaque-directory marker (`trusted.overlay.opaque`)
 * lives in one, so LayeredFs needs this.
 */
type NativeFn = ReturnType<ReturnType<typeof libc>['func']>;
let lgetxattrFn: NativeFn | undefined;
let lsetxattrFn: NativeFn | undefined;

/** The attribute's bytes, or undefined when it is absent or unreadable. */
// Reused across calls: the attributes read here (opaque markers, capabilities) are small.
const scratch = Buffer.alloc(4096);

export function lgetxattr(path: string, name: string): Buffer | undefined {
  lgetxattrFn ??= libc().func('long lgetxattr(const char *path, const char *name, _Out_ uint8_t *value, size_t size)');
  const n = lgetxattrFn(path, name, scratch, scratch.length) as number;
  if (n < 0) return undefined;
  return Buffer.from(scratch.subarray(0, n));
}

/** Sets an attribute; returns false on failure (no permission, unsupported file system). */
export function lsetxattr(path: string, name: string, value: Buffer): boolean {
  lsetxattrFn ??= libc().func('int lsetxattr(const char *path, const char *name, const uint8_t *value, size_t size, int flags)');
  return (lsetxattrFn(path, name, value, value.length, 0) as number) === 0;
}
