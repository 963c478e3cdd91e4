import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { KilnError } from '../errors/index.js';
import { errno, Errno, libc } from '../sys/libc.js';
import { STORE_FILE_MODE } from './store-dirs.js';

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
// flock's EWOULDBLOCK is EAGAIN on Linux
const { EAGAIN: EWOULDBLOCK, EINTR } = Errno;

type NativeFn = ReturnType<ReturnType<typeof libc>['func']>;
let flockFn: NativeFn | undefined;

/**
 * flock(2) rather than fcntl locks: flock locks belong to the open file
 * description, so they vanish when the process dies (even by SIGKILL) and two
 * descriptors in one process exclude each other like two processes do.
 */
function flock(fd: number, op: number): number {
  flockFn ??= libc().func('int flock(int fd, int op)');
  return flockFn(fd, op) as number;
}

export type LockMode = 'shared' | 'exclusive';

/** Opens (creating if missing) a lock file: with the store's file mode, whatever the umask, since lock files are never rewritten. */
export function openLockFile(path: string): Promise<FileHandle> {
  return open(path, 'a', STORE_FILE_MODE);
}

/** One non-blocking attempt; true when taken, false when someone else holds a conflicting lock. */
export function tryFlock(fd: number, mode: LockMode): boolean {
  for (;;) {
    const rc = flock(fd, (mode === 'shared' ? LOCK_SH : LOCK_EX) | LOCK_NB);
    if (rc === 0) return true;
    const e = errno();
    if (e === EINTR) continue;
    if (e === EWOULDBLOCK) return false;
    throw new KilnError('STORE', `flock failed: errno ${e}`);
  }
}

export function unflock(fd: number): void {
  flock(fd, LOCK_UN);
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Waits for the lock by polling with LOCK_NB: a blocking flock through koffi
 * would stall the whole event loop (and every other lock holder in this process).
 */
export async function waitFlock(fd: number, mode: LockMode, opts: { timeoutMs?: number | undefined; what?: string; signal?: AbortSignal | undefined } = {}): Promise<void> {
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  let delay = 2;
  for (;;) {
    if (tryFlock(fd, mode)) return;
    if (opts.signal?.aborted) throw new KilnError('CANCELLED', `cancelled while waiting for ${opts.what ?? 'store lock'}`);
    if (Date.now() >= deadline) {
      throw new KilnError('STORE_LOCKED', `${opts.what ?? 'store lock'}: held by another kiln process`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

/** In-process queues per lock file, so callers in one process wait their turn without spinning. */
const queues = new Map<string, Promise<unknown>>();

/**
 * Runs `fn` holding an exclusive flock on `path` (created if missing). Callers
 * in this process are serialised first; other processes are excluded by flock.
 */
export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts: { timeoutMs?: number; what?: string } = {}): Promise<T> {
  const prev = queues.get(path) ?? Promise.resolve();
  let release!: () => void;
  const mine = new Promise<void>((r) => (release = r));
  const chain = prev.then(() => mine);
  queues.set(path, chain);
  await prev.catch(() => undefined);
  let fh: FileHandle | undefined;
  try {
    fh = await openLockFile(path);
    await waitFlock(fh.fd, 'exclusive', opts);
    return await fn();
  } finally {
    if (fh) {
      try {
        unflock(fh.fd);
      } finally {
        await fh.close();
      }
    }
    release();
    if (queues.get(path) === chain) queues.delete(path);
  }
}
