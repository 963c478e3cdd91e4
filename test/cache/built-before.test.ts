import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreCacheIndex, type CacheRecord } from '../../src/cache/records.js';
import { ImportedCaches, LayeredCacheIndex } from '../../src/cache/remote/imported.js';
import { stepCacheKey } from '../../src/cache/keys.js';
import { tempStore } from '../helpers/temp-dir.js';

let t: Awaited<ReturnType<typeof tempStore>>;
beforeAll(async () => {
  t = await tempStore();
});
afterAll(async () => {
  await t.cleanup();
});

const parts = { parent: 'scratch', op: { kind: 'COPY' }, env: {}, inputs: ['sha256:1'] };
const record = (): CacheRecord => ({ version: 1, key: stepCacheKey(parts), history: { created_by: 'COPY a /a' } });

describe('whether a step was built before (the hint that lets a step run before its key)', () => {
  it('is false for a Dockerfile position this store never built, true once a record was put for it', async () => {
    const local = new StoreCacheIndex(t.store.layout, (d) => t.store.hasBlob(d));
    expect(await local.builtBefore('ctx/Dockerfile#0#1')).toBe(false);
    await local.put(record(), 'ctx/Dockerfile#0#1', parts);
    expect(await local.builtBefore('ctx/Dockerfile#0#1')).toBe(true);
    expect(await local.builtBefore('ctx/Dockerfile#0#2')).toBe(false);
    expect(await local.builtBefore('other/Dockerfile#0#1')).toBe(false);
  });

  it('is true for every position once a cache is imported (any of its records may match), else the store decides', async () => {
    const local = new StoreCacheIndex(t.store.layout, (d) => t.store.hasBlob(d));
    const none = new LayeredCacheIndex(local, new ImportedCaches(t.store, () => undefined));
    expect(await none.builtBefore('never#0#1')).toBe(false);
    await local.put(record(), 'layered/Dockerfile#0#1', parts);
    expect(await none.builtBefore('layered/Dockerfile#0#1')).toBe(true);
    const imported = new ImportedCaches(t.store, () => undefined);
    imported.add({ label: 'registry cache', doc: { version: 1, records: [record()], mounts: [] }, fetch: async () => undefined });
    expect(await new LayeredCacheIndex(local, imported).builtBefore('never#0#1')).toBe(true);
  });
});
