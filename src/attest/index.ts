/**
 * attest/ — in-toto attestations about built images: SLSA provenance from a
 * build's record, SBOM statements (documents from sbom/), and the attestation
 * manifests that carry them inside an image index, laid out as BuildKit lays
 * them out. Imports: image/ only; blobs go through the BlobSink port.
 */
export * from './in-toto.js';
export * from './manifest.js';
export * from './provenance.js';
export * from './sbom-statement.js';
