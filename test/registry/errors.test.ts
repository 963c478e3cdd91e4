import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RegistryError } from '../../src/errors/index.js';
import { pull, push, parseReference } from '../../src/registry/index.js';
import { makeRandomImage, tempStore, uniqueRepo } from './helpers/images.js';

const reg = inject('registry');

/** A registry's refusal reaches the caller as a RegistryError with the HTTP status and the OCI error code the registry sent. */
describe('registry errors keep their data', () => {
  let src: Awaited<ReturnType<typeof tempStore>>;
  beforeAll(async () => {
    src = await tempStore();
  });
  afterAll(async () => {
    await src.dispose();
  });

  it('a push without credentials: 401, code REGISTRY_AUTH', async () => {
    const ref = `${reg.basic}/${uniqueRepo()}:v1`;
    await makeRandomImage(src.store, parseReference(ref).toString(), [1000]);
    const err = await push(src.store, ref).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    const r = err as RegistryError;
    expect(r.code).toBe('REGISTRY_AUTH');
    expect(r.status).toBe(401);
  });

  it('a manifest that is not there: 404 with MANIFEST_UNKNOWN, code NOT_FOUND', async () => {
    const dst = await tempStore();
    try {
      const err = await pull(dst.store, `${reg.anon}/${uniqueRepo()}@sha256:${'0'.repeat(64)}`).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RegistryError);
      const r = err as RegistryError;
      expect(r.code).toBe('NOT_FOUND');
      expect(r.status).toBe(404);
      expect(r.ociCode).toBe('MANIFEST_UNKNOWN');
    } finally {
      await dst.dispose();
    }
  });
});
