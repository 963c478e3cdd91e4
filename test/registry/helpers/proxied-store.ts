import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { Store } from '../../../src/store/store.js';
import { FaultProxy } from './fault-proxy.js';
import { tempStore } from './images.js';

export interface ProxiedStore {
  store: Store;
  root: string;
  proxy: FaultProxy;
}

/**
 * Gives the enclosing describe block a temp store and a FaultProxy in front
 * of `upstream`, made before its first test and closed after its last (the
 * fields are filled in by then). With `settleEachTest`, every test must leave
 * no fault rule unused, and the next one starts with an empty request log.
 */
export function useProxiedStore(upstream: string, opts: { settleEachTest?: boolean } = {}): ProxiedStore {
  const fixture = {} as ProxiedStore;
  let dispose: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    const t = await tempStore();
    dispose = t.dispose;
    fixture.store = t.store;
    fixture.root = t.root;
    fixture.proxy = await FaultProxy.start(upstream);
  });
  afterAll(async () => {
    await fixture.proxy?.close();
    await dispose?.();
  });
  if (opts.settleEachTest) {
    afterEach(() => {
      expect(fixture.proxy.pending()).toBe(0);
      fixture.proxy.clear();
    });
  }
  return fixture;
}
