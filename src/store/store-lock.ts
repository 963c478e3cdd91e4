import type { FileHandle } from 'node:fs/promises';
import { KilnError } from '../errors/index.js';
import { openLockFile, tryFlock, waitFlock } from './flock.js';

/**
 * The store-wide lock. Every open store holds it shared; an exclusive holder
 * is alone on the store (used to sweep tmp/ and to prune). One open file
 * description per root per process is shared by all Store objects of this
 * process, so "alone" means "no other process", whatever this process opened.
 */
interface Held {
  fh: FileHandle;
  users: number;
  /** true while this process holds it exclusively */
  exclusive: boolean;
}

const held = new Map<string, Promise<Held>>();

export async function acquireStoreLock(lockPath: string, onExclusive: () => Promise<void>, timeoutMs?: number): Promise<void> {
  let p = held.get(lockPath);
  if (!p) {
    p = (async () => {
      const fh = await openLockFile(lockPath);
      try {
        // Alone on the store: nobody can have in-flight files in tmp/, so sweep them.
        if (tryFlock(fh.fd, 'exclusive')) {
          try {
            await onExclusive();
          } finally {
            // downgrading never blocks
            await waitFlock(fh.fd, 'shared');
          }
        } else {
          await waitFlock(fh.fd, 'shared', { timeoutMs, what: `store ${lockPath}` });
        }
      } catch (e) {
        await fh.close();
        throw e;
      }
      return { fh, users: 0, exclusive: false };
    })();
    held.set(lockPath, p);
    p.catch(() => held.delete(lockPath));
  }
  const h = await p;
  h.users++;
}

export async function releaseStoreLock(lockPath: string): Promise<void> {
  const p = held.get(lockPath);
  if (!p) return;
  const h = await p;
  if (--h.users > 0) return;
  held.delete(lockPath);
  await h.fh.close();
}

/**
 * Runs `fn` while this process is the only one using the store. Fails fast
 * (STORE_LOCKED) when another kiln process has it open, unless `timeoutMs` lets
 * it wait. flock converts shared→exclusive by dropping the shared lock first,
 * so on failure the shared lock is taken again.
 */
export async function withExclusiveStore<T>(lockPath: string, fn: () => Promise<T>, timeoutMs = 0): Promise<T> {
  const p = held.get(lockPath);
  if (!p) throw new KilnError('INTERNAL', `store lock ${lockPath} is not held (store closed?)`);
  const h = await p;
  if (h.exclusive) return fn();
  try {
    await waitFlock(h.fh.fd, 'exclusive', { timeoutMs, what: 'store is in use by another kiln process' });
  } catch (e) {
    await waitFlock(h.fh.fd, 'shared');
    throw e;
  }
  h.exclusive = true;
  try {
    return await fn();
  } finally {
    h.exclusive = false;
    await waitFlock(h.fh.fd, 'shared');
  }
}
