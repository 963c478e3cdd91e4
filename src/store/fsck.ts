import { finished } from 'node:stream/promises';
import pLimit from 'p-limit';
import { isKilnError } from '../errors/index.js';
import { isDigest, type Digest } from '../image/digest.js';
import { isIndexMediaType, isManifestMediaType } from '../image/media-types.js';
import type { Descriptor, ImageConfig, Index, Manifest } from '../image/types.js';
import { liveLeftovers } from '../sandbox/scratch.js';
import { listSnapshots } from './snapshots.js';
import type { Store } from './store.js';

export type FsckProblemKind = 'corrupt-blob' | 'missing-blob' | 'size-mismatch' | 'bad-document' | 'incomplete-snapshot' | 'live-leftover';

export interface FsckProblem {
  kind: FsckProblemKind;
  /** The blob concerned, when there is one. */
  digest?: Digest;
  /** The name (or `<none>@digest`) whose image is affected. */
  ref?: string;
  message: string;
}

export interface FsckReport {
  blobsChecked: number;
  refsChecked: number;
  problems: FsckProblem[];
}

/**
 * Verifies every blob against its digest (file name) and every reference:
 * the manifest, index children, config and layers must be present with the
 * sizes their descriptors claim, and the config must name one diffID per layer.
 * Also reports what killed builds left alive (containers, mounts) and
 * snapshots whose extraction was interrupted.
 */
export async function fsck(store: Store, opts: { concurrency?: number } = {}): Promise<FsckReport> {
  const problems: FsckProblem[] = [];
  const blobs = await store.listBlobs();
  const limit = pLimit(opts.concurrency ?? 2);
  const corrupt = new Set<Digest>();
  await Promise.all(
    blobs.map((d) =>
      limit(async () => {
        try {
          const s = store.openBlob(d, { verify: true });
          s.resume();
          await finished(s);
        } catch (e) {
          corrupt.add(d);
          problems.push({ kind: 'corrupt-blob', digest: d, message: isKilnError(e) ? e.message : `blob ${d}: ${(e as Error).message}` });
        }
      }),
    ),
  );

  const entries = await store.listEntries();
  const seen = new Set<string>();
  for (const e of entries) {
    const name = e.ref ?? `<none>@${e.descriptor.digest}`;
    await checkDescriptor(e.descriptor, name, 'image');
  }

  async function present(d: Descriptor, ref: string, what: string): Promise<boolean> {
    const size = await store.blobSize(d.digest);
    if (size === undefined) {
      problems.push({ kind: 'missing-blob', digest: d.digest, ref, message: `${ref}: ${what} ${d.digest} is missing` });
      return false;
    }
    if (size !== d.size) {
      problems.push({ kind: 'size-mismatch', digest: d.digest, ref, message: `${ref}: ${what} ${d.digest} is ${size} bytes, descriptor says ${d.size}` });
    }
    return !corrupt.has(d.digest);
  }

  async function checkDescriptor(d: Descriptor, ref: string, what: string): Promise<void> {
    const key = `${ref}\u0000${d.digest}`;
    if (seen.has(key)) return;
    seen.add(key);
    if (!isDigest(d.digest)) {
      problems.push({ kind: 'bad-document', ref, message: `${ref}: ${what} has invalid digest "${d.digest}"` });
      return;
    }
    if (!(await present(d, ref, what))) return;
    const bad = (msg: string): void => void problems.push({ kind: 'bad-document', digest: d.digest, ref, message: `${ref}: ${msg}` });
    let doc: unknown;
    try {
      doc = JSON.parse((await store.readBlob(d.digest)).toString('utf8'));
    } catch {
      return bad(`${what} ${d.digest} is not JSON`);
    }
    if (isIndexMediaType(d.mediaType)) {
      const ix = doc as Index;
      if (!Array.isArray(ix.manifests)) return bad(`index ${d.digest} has no manifests list`);
      // a pulled index may legitimately lack the other platforms' manifests; only those present are checked
      for (const m of ix.manifests) if (await store.hasBlob(m.digest)) await checkDescriptor(m, ref, 'manifest');
      return;
    }
    if (!isManifestMediaType(d.mediaType)) return;
    const m = doc as Manifest;
    if (!m.config || !Array.isArray(m.layers)) return bad(`manifest ${d.digest} lacks config or layers`);
    if (await present(m.config, ref, 'config')) {
      try {
        const cfg = JSON.parse((await store.readBlob(m.config.digest)).toString('utf8')) as ImageConfig;
        const n = cfg.rootfs?.diff_ids?.length ?? -1;
        if (n !== m.layers.length) bad(`config ${m.config.digest} names ${n} diffIDs for ${m.layers.length} layers`);
      } catch {
        bad(`config ${m.config.digest} is not JSON`);
      }
    }
    for (const l of m.layers) if (!l.urls?.length) await present(l, ref, 'layer');
  }

  // a killed build's container still running over a mounted overlay: any command but fsck stops and unmounts it
  const live = await liveLeftovers(store.root);
  for (const id of live.containers) {
    problems.push({ kind: 'live-leftover', message: `container ${id} of a kiln process that is gone still exists (any other kiln command, e.g. kiln prune, stops it)` });
  }
  for (const mp of live.mounts) {
    problems.push({ kind: 'live-leftover', message: `${mp} is still mounted by a kiln process that is gone (any other kiln command, e.g. kiln prune, unmounts it)` });
  }
  for (const s of await listSnapshots(store.layout)) {
    if (!s.diffID) problems.push({ kind: 'incomplete-snapshot', message: `snapshot ${s.path} has no diffID marker (interrupted extraction; kiln prune removes it)` });
  }
  return { blobsChecked: blobs.length, refsChecked: entries.length, problems };
}
