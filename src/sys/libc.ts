import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { getSystemErrorMap } from 'node:util';
import type { LibraryHandle } from 'koffi';

/**
 * The one place kiln binds libc. System calls that Node does not expose
 * (mount, umount2, flock) are declared by the modules that need them, on this
 * shared handle, so libc is loaded once and only when such a call is made.
 * The native addon itself is required on first use too: a program that
 * imports the library only to parse a spec or read a type never loads it.
 */
type Koffi = typeof import('koffi');
let koffi: Koffi | undefined;
let lib: LibraryHandle | undefined;

function addon(): Koffi {
  koffi ??= platformAddon() ?? (createRequire(import.meta.url)('koffi') as Koffi);
  return koffi;
}

/**
 * koffi's native addon, loaded straight from the platform package npm installs beside it. koffi's
 * entry module only finds that file (resolving two packages' `exports` and probing a list of
 * paths) and adds deprecated aliases kiln does not use; that costs every cached build about 8 ms,
 * a sixth of what it spends beyond Node's own start. The path is where npm puts the package for
 * kiln's own install (this file and the bundle both sit two levels under the package root);
 * anywhere else (kiln installed as a dependency and hoisted, musl, another layout) koffi's entry
 * module finds it as before.
 */
function platformAddon(): Koffi | undefined {
  const { platform, arch } = process;
  const file = fileURLToPath(new URL(`../../node_modules/@koromix/koffi-${platform}-${arch}/${platform}_${arch}/koffi.node`, import.meta.url));
  const module = { exports: {} as Koffi };
  try {
    process.dlopen(module, file);
  } catch {
    // not there (or not loadable here): koffi's entry module looks elsewhere
    return undefined;
  }
  return typeof module.exports.load === 'function' && typeof module.exports.errno === 'function' ? module.exports : undefined;
}

export function libc(): LibraryHandle {
  lib ??= addon().load('libc.so.6');
  return lib;
}

/** errno of the last failed libc call on this thread. */
export function errno(): number {
  return addon().errno();
}

/** errno values callers branch on (Linux's generic numbering: x86_64 and arm64 alike). */
export const Errno = { EPERM: 1, ENOENT: 2, EINTR: 4, EAGAIN: 11, EXDEV: 18, ENOTDIR: 20, ENAMETOOLONG: 36, ENOSYS: 38, ELOOP: 40 } as const;

/** open(2)'s O_PATH, which Node's fs.constants lacks. */
export const O_PATH = 0o10000000;

/** "EACCES (permission denied)" for an errno, as Node names it. */
export function errnoText(e: number): string {
  const known = getSystemErrorMap().get(-e);
  return known ? `${known[0]} (${known[1]})` : `errno ${e}`;
}
