/**
 * attest/ — in-toto attestations about built images: SLSA provenance from a
 * build's record, SBOM statements (documents from sbom/, scanned over a
 * LayeredFs of the image's layers in the store), and the attestation
 * manifests that carry them inside an image index, laid out as BuildKit lays
 * them out. Blobs go through the BlobSink port.
 * May import: context/, errors/, image/, sbom/, store/, version.ts.
 */
export * from './in-toto.js';
export * from './manifest.js';
export * from './provenance.js';
export * from './sbom-statement.js';
