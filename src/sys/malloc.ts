import { libc } from './libc.js';

let trimFn: ((pad: number) => number) | undefined;

/**
 * malloc_trim(3): glibc gives the free memory of every arena back to the system. Blocks that
 * threads freed stay resident in their arenas otherwise (glibc serves big blocks from the arenas
 * once such a block has been freed). False where libc has no malloc_trim (musl): nothing happens.
 */
export function trimFreedMemory(): boolean {
  try {
    trimFn ??= libc().func('int malloc_trim(size_t pad)') as (pad: number) => number;
    trimFn(0);
    return true;
  } catch {
    return false;
  }
}
