import path from 'node:path';
import { replaceFile } from '../fs/replace-file.js';
import { parsePlatform, platformDirName } from '../image/platform.js';
import type { AttachedStatement } from './attestations.js';

/**
 * `--output type=local` carries the attestations as files beside the file
 * system, with BuildKit's names: provenance.json, sbom.spdx.json for the
 * image's SBOM, and sbom-<stage>.spdx.json / sbom-context.spdx.json for the
 * stages and context scanned besides it.
 */
export async function writeLocalAttestations(dest: string, statements: AttachedStatement[], multiPlatform: boolean): Promise<void> {
  // several platforms: each image's files are in its own directory (linux_amd64/), and so are its attestations
  for (const s of statements) {
    const dir = multiPlatform ? path.join(dest, platformDirName(parsePlatform(s.platform))) : dest;
    // an image may hold a symlink of that name: it is replaced, never written through
    await replaceFile(path.join(dir, s.file), `${JSON.stringify(s.statement, null, 2)}\n`, { replaceEntry: true });
  }
}
