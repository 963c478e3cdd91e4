import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PREDICATE_SLSA_V02, PREDICATE_SLSA_V1, PREDICATE_SPDX, type Statement } from '../attest/in-toto.js';

/**
 * `--output type=local` carries the attestations as files beside the file
 * system, with BuildKit's names: the SBOM statement as sbom.spdx.json, the
 * provenance statement as provenance.json.
 */
export async function writeLocalAttestations(dest: string, statements: Statement[]): Promise<void> {
  for (const s of statements) {
    const name = s.predicateType === PREDICATE_SPDX ? 'sbom.spdx.json' : s.predicateType === PREDICATE_SLSA_V02 || s.predicateType === PREDICATE_SLSA_V1 ? 'provenance.json' : undefined;
    if (name) await writeFile(path.join(dest, name), `${JSON.stringify(s, null, 2)}\n`);
  }
}
