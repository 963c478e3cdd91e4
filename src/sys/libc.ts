import { createRequire } from 'node:module';
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
  koffi ??= createRequire(import.meta.url)('koffi') as Koffi;
  return koffi;
}

export function libc(): LibraryHandle {
  lib ??= addon().load('libc.so.6');
  return lib;
}

/** errno of the last failed libc call on this thread. */
export function errno(): number {
  return addon().errno();
}
