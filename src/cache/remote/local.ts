import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Digest } from '../../image/digest.js';
import { OCI_INDEX_FILE, REF_NAME_ANNOTATION, layoutBlobPath, writeOciLayout } from '../../image/oci-layout.js';
import type { Descriptor, Manifest } from '../../image/types.js';
import type { Store } from '../../store/store.js';
import { LayoutDirectory } from '../../export/archive-writer.js';
import { checkDoc, type CacheArtifact, type CacheDocument } from '../document.js';
import type { CacheSource } from './imported.js';

/**
 * `--cache-from type=local,src=DIR[,tag=T]`: the cache artifact of an OCI
 * layout directory, the index.json entry named `tag` (default `latest`, else
 * the first). Undefined when the directory holds none.
 */
export async function localSource(store: Store, spec: { src: string; tag?: string }): Promise<CacheSource | undefined> {
  const index = JSON.parse(await readFile(path.join(spec.src, OCI_INDEX_FILE), 'utf8').catch(() => '{"manifests":[]}')) as { manifests: Descriptor[] };
  const want = spec.tag ?? 'latest';
  const top = index.manifests.find((m) => (m.annotations?.[REF_NAME_ANNOTATION] ?? 'latest') === want) ?? index.manifests[0];
  if (!top) return undefined;
  const blob = (d: Digest) => path.join(spec.src, layoutBlobPath(d));
  const fetchTo = async (desc: Descriptor) => {
    await store.writeBlob(createReadStream(blob(desc.digest)), { digest: desc.digest, size: desc.size });
  };
  const manifest = JSON.parse(await readFile(blob(top.digest), 'utf8')) as Manifest;
  const doc = JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as CacheDocument;
  return { label: spec.src, doc: checkDoc(doc, spec.src), fetch: fetchTo };
}

/**
 * `--cache-to type=local,dest=DIR[,tag=T]`: the artifact as an OCI layout,
 * written by the one layout writer into DIR in place (blobs already there are
 * kept); index.json names it under `tag`.
 */
export async function exportToLocal(store: Store, dest: string, tag: string, artifact: CacheArtifact): Promise<void> {
  const entry: Descriptor = { ...artifact.descriptor, annotations: { [REF_NAME_ANNOTATION]: tag } };
  await writeOciLayout(new LayoutDirectory(dest), [{ entry, blobs: [...artifact.blobs, artifact.descriptor] }], (d) => store.openBlob(d.digest, { verify: 'once' }));
}
