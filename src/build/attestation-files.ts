import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { AttachedStatement } from './attestations.js';

/**
 * `--output type=local` carries the attestations as files beside the file
 * system, with BuildKit's names: provenance.json, sbom.spdx.json for the
 * image's SBOM, and sbom-<stage>.spdx.json / sbom-context.spdx.json for the
 * stages and context scanned besides it.
 */
export async function writeLocalAttestations(dest: string, statements: AttachedStatement[]): Promise<void> {
  for (const s of statements) await writeFile(path.join(dest, s.file), `${JSON.stringify(s.statement, null, 2)}\n`);
}
