import { KilnError } from '../../errors/index.js';
import { REF_NAME_ANNOTATION, writeOciLayout } from '../../image/oci-layout.js';
import type { Descriptor, Manifest } from '../../image/types.js';
import type { Store } from '../../store/store.js';
import { checkDoc, type CacheArtifact } from '../document.js';
import type { CacheSource } from './imported.js';

// The layout reader and writer (export/) are imported by the two functions: every build loads
// this module with the cache backends, and most never read or write a local cache.

/**
 * `--cache-from type=local,src=DIR[,tag=T]`: the cache artifact of an OCI
 * layout directory, the index.json entry named `tag` (default `latest`, else
 * the first). Undefined when the directory holds none.
 */
export async function localSource(store: Store, spec: { src: string; tag?: string }, warn: (message: string) => void): Promise<CacheSource | undefined> {
  // the directory is the user's, but what it holds may come from anywhere: documents are
  // bounded, digests and sizes checked and blobs regular files (export/oci-layout.ts)
  const { copyBlob, readLayoutDocument, readLayoutIndex } = await import('../../export/oci-layout.js');
  const index = await readLayoutIndex(spec.src, spec.src);
  const manifests = Array.isArray(index?.manifests) ? index.manifests : [];
  const want = spec.tag ?? 'latest';
  const top = manifests.find((m) => (m.annotations?.[REF_NAME_ANNOTATION] ?? 'latest') === want) ?? manifests[0];
  if (!top) return undefined;
  const manifest = await readLayoutDocument<Manifest>(spec.src, top, spec.src);
  if (!manifest.config) throw new KilnError('ARCHIVE', `${spec.src}: ${top.digest} is not an image manifest`);
  const doc = await readLayoutDocument<unknown>(spec.src, manifest.config, spec.src);
  return { label: spec.src, doc: checkDoc(doc, spec.src, warn), fetch: (desc) => copyBlob(store, spec.src, desc, spec.src) };
}

/**
 * `--cache-to type=local,dest=DIR[,tag=T]`: the artifact as an OCI layout,
 * written by the one layout writer into DIR in place (blobs already there are
 * kept); index.json names it under `tag`.
 */
export async function exportToLocal(store: Store, dest: string, tag: string, artifact: CacheArtifact): Promise<void> {
  const { LayoutDirectory } = await import('../../export/archive-writer.js');
  const entry: Descriptor = { ...artifact.descriptor, annotations: { [REF_NAME_ANNOTATION]: tag } };
  await writeOciLayout(new LayoutDirectory(dest, '--cache-to type=local'), [{ entry, blobs: [...artifact.blobs, artifact.descriptor] }], (d) => store.openBlob(d.digest, { verify: 'once' }));
}
