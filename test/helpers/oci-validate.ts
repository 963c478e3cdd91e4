import { expect } from 'vitest';
import { FIXTURE_SCHEMA_DIR, validateOci, type OciDocumentKind } from './oci-schema.js';

/**
 * Asserts that a document (object, JSON text or bytes) validates against the
 * OCI image-spec schema for `kind`, listing every error on failure.
 */
export function expectValidOci(doc: unknown, kind: OciDocumentKind, schemaDir = FIXTURE_SCHEMA_DIR): void {
  const value = typeof doc === 'string' ? JSON.parse(doc) : doc instanceof Uint8Array ? JSON.parse(Buffer.from(doc).toString('utf8')) : doc;
  expect(validateOci(value, kind, schemaDir), `OCI ${kind} schema errors`).toEqual([]);
}

/** Validates an image end to end as stored: manifest, config and every descriptor. */
export async function expectValidStoredImage(store: { readBlob(d: never): Promise<Buffer> }, manifestDigest: string, schemaDir = FIXTURE_SCHEMA_DIR): Promise<void> {
  const read = (d: string) => store.readBlob(d as never);
  const manifest = JSON.parse((await read(manifestDigest)).toString('utf8')) as { mediaType?: string; manifests?: Array<{ digest: string }>; config?: { digest: string } };
  if (manifest.manifests) {
    expectValidOci(manifest, 'index', schemaDir);
    return;
  }
  expectValidOci(manifest, 'manifest', schemaDir);
  expectValidOci(await read(manifest.config!.digest), 'config', schemaDir);
}

/**
 * Validates a whole store as other tools see it: oci-layout, index.json, and
 * for every entry the manifest or index (and an index's stored children), each
 * OCI config, and every descriptor's size.
 */
export async function expectValidStore(store: {
  layout: { ociLayout: string; index: string };
  readBlob(d: never): Promise<Buffer>;
  hasBlob(d: never): Promise<boolean>;
}, schemaDir = FIXTURE_SCHEMA_DIR): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  expectValidOci(await readFile(store.layout.ociLayout), 'layout', schemaDir);
  const index = JSON.parse(await readFile(store.layout.index, 'utf8')) as { manifests: Array<{ digest: string; mediaType: string }> };
  expectValidOci(index, 'index', schemaDir);
  const visit = async (d: { digest: string; mediaType: string }): Promise<void> => {
    const doc = JSON.parse((await store.readBlob(d.digest as never)).toString('utf8')) as { manifests?: Array<{ digest: string; mediaType: string }>; config?: { digest: string; mediaType: string } };
    const oci = d.mediaType.startsWith('application/vnd.oci.');
    if (doc.manifests) {
      if (oci) expectValidOci(doc, 'index', schemaDir);
      for (const m of doc.manifests) if (await store.hasBlob(m.digest as never)) await visit(m);
      return;
    }
    if (oci) expectValidOci(doc, 'manifest', schemaDir);
    if (doc.config && doc.config.mediaType === 'application/vnd.oci.image.config.v1+json') expectValidOci(await store.readBlob(doc.config.digest as never), 'config', schemaDir);
  };
  for (const m of index.manifests) await visit(m);
}
