import koffi, { type LibraryHandle } from 'koffi';

/**
 * The one place kiln binds libc. System calls that Node does not expose
 * (mount, umount2, flock) are declared by the modules that need them, on this
 * shared handle, so libc is loaded once and only when such a call is made.
 */
let lib: LibraryHandle | undefined;

export function libc(): LibraryHandle {
  lib ??= koffi.load('libc.so.6');
  return lib;
}

/** errno of the last failed libc call on this thread. */
export function errno(): number {
  return koffi.errno();
}
