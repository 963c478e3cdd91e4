import type { Command } from 'commander';
import { KilnError } from '../errors/index.js';
import type { Descriptor } from '../image/types.js';
import type { Store } from '../store/store.js';
import { globalOptions } from './global-options.js';

/**
 * Opens the store named by `--root`, else `$KILN_ROOT`, else the default for
 * this user. First stops, unmounts and removes what killed builds left
 * (containers, mounts, cgroups, scratch dirs), as `build` does; `sweep: false`
 * leaves them to be reported (fsck).
 */
export async function openStore(cmd: Command, opts: { sweep?: boolean } = {}): Promise<Store> {
  const { Store, defaultRoot } = await import('../store/store.js');
  const { root } = globalOptions(cmd);
  const dir = root ?? defaultRoot();
  if (opts.sweep !== false) {
    const { checkedLayout } = await import('../store/store-dirs.js');
    const { sweepKilledRuns } = await import('../sandbox/scratch.js');
    // the sweep deletes in tmp/: only once the root and tmp/ are known to be this user's own
    const layout = checkedLayout(dir);
    await sweepKilledRuns(layout.root);
    return Store.open(dir, { layout });
  }
  return Store.open(dir);
}

/** Runs `fn` with the store open and closes it afterwards. */
export async function withStore<T>(cmd: Command, fn: (store: Store) => Promise<T>, opts: { sweep?: boolean } = {}): Promise<T> {
  const store = await openStore(cmd, opts);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** A user-typed name (`busybox`, `localhost:5000/x:1`) → the full reference tags are stored under. */
export async function normaliseRef(input: string): Promise<string> {
  const { parseReference } = await import('../registry/reference.js');
  return parseReference(input).toString();
}

/**
 * What the user names on the command line → a stored image: a reference
 * (normalised like Docker: `busybox` is `docker.io/library/busybox:latest`),
 * the exact stored name, a full digest, or a unique digest prefix. A
 * reference with a digest finds the content that digest names (the store's
 * resolveImage), not whatever a stored name of that spelling points to;
 * `anyName` (rmi, which only drops the name) takes the stored name as it is.
 */
export async function findImage(store: Store, input: string, opts: { anyName?: boolean } = {}): Promise<{ ref?: string; descriptor: Descriptor }> {
  const hexLike = /^(sha256:)?[a-f0-9]{4,64}$/.test(input);
  const byName = async (ref: string): Promise<{ ref?: string; descriptor: Descriptor } | undefined> => {
    if (opts.anyName || !ref.includes('@')) {
      const d = await store.resolve(ref);
      return d && { ref, descriptor: d };
    }
    const d = await store.resolveImage(ref);
    // the name goes with it (to save, say) only when it is the stored name of exactly that content
    return d && ((await store.resolve(ref))?.digest === d.digest ? { ref, descriptor: d } : { descriptor: d });
  };
  const exact = await byName(input);
  if (exact) return exact;
  let ref: string | undefined;
  try {
    ref = input.startsWith('sha256:') ? undefined : await normaliseRef(input);
  } catch (e) {
    if (!hexLike) throw new KilnError('USAGE', `invalid image name "${input}": ${(e as Error).message}`);
  }
  if (ref !== undefined) {
    const found = await byName(ref);
    if (found) return found;
  }
  // like Docker, a name wins over a digest prefix that happens to look the same
  const d = hexLike ? await store.resolveImage(input) : undefined;
  if (!d) throw new KilnError('NOT_FOUND', `image ${input}: not found in store ${store.root}`);
  return { descriptor: d };
}
