import { finished } from 'node:stream/promises';
import pLimit from 'p-limit';
import { isKilnError, StoreCorruptError } from '../errors/index.js';
import { configShape, indexShape, manifestShape, parseJSONSafe, ShapeError, type Shape } from '../image/document-shapes.js';
import { isDigest, type Digest } from '../image/digest.js';
import { isIndexMediaType, isManifestMediaType } from '../image/media-types.js';
import type { Descriptor } from '../image/types.js';
import { listSnapshots } from './snapshots.js';
import type { Store } from './store.js';

export type FsckProblemKind = 'corrupt-blob' | 'missing-blob' | 'size-mismatch' | 'bad-document' | 'corrupt-metadata' | 'incomplete-snapshot' | 'live-leftover';

export interface FsckProblem {
  kind: FsckProblemKind;
  /** The blob concerned, when there is one. */
  digest?: Digest;
  /** The name (or `<none>@digest`) whose image is affected. */
  ref?: string;
  message: string;
}

/** What killed builds left alive under a store root (sandbox/scratch.ts's liveLeftovers). */
export type LeftoverProbe = (storeRoot: string) => Promise<{ containers: string[]; mounts: string[] }>;

export interface FsckOptions {
  concurrency?: number;
  /**
   * Looks for containers and mounts of kiln processes that are gone. The
   * sandbox owns them and sits above the store, so it is passed in (the CLI
   * and the library's fsck pass sandbox's liveLeftovers); without it they are
   * not checked.
   */
  leftovers?: LeftoverProbe;
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
export async function fsck(store: Store, opts: FsckOptions = {}): Promise<FsckReport> {
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

  // a damaged index.json names no images: reported, and nothing else to check through it
  const entries = await store.listEntries().catch((e: unknown) => {
    if (!(e instanceof StoreCorruptError)) throw e;
    problems.push({ kind: 'corrupt-metadata', message: e.message });
    return [];
  });
  for (const e of await store.metadata.damaged()) {
    problems.push({ kind: 'corrupt-metadata', message: `${e.message} (kiln prune removes it; kiln records it again as it reads and writes images)` });
  }
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
      doc = parseJSONSafe((await store.readBlob(d.digest)).toString('utf8'));
    } catch {
      return bad(`${what} ${d.digest} is not JSON`);
    }
    // the shape checks turn a hostile or damaged document into a finding, never a crash of fsck itself
    const shaped = <T>(shape: Shape<T>, v: unknown, kind: string): T | undefined => {
      try {
        return shape(v);
      } catch (e) {
        if (!(e instanceof ShapeError)) throw e;
        bad(`${kind} ${d.digest}: ${e.message}`);
        return undefined;
      }
    };
    if (isIndexMediaType(d.mediaType)) {
      const ix = shaped(indexShape, doc, 'index');
      if (!ix) return;
      // a pulled index may legitimately lack the other platforms' manifests; only those present are checked
      for (const m of ix.manifests) if (await store.hasBlob(m.digest)) await checkDescriptor(m, ref, 'manifest');
      return;
    }
    if (!isManifestMediaType(d.mediaType)) return;
    const m = shaped(manifestShape, doc, 'manifest');
    if (!m) return;
    if (await present(m.config, ref, 'config')) {
      let cfg: unknown;
      try {
        cfg = parseJSONSafe((await store.readBlob(m.config.digest)).toString('utf8'));
      } catch {
        cfg = undefined;
      }
      if (cfg === undefined) bad(`config ${m.config.digest} is not JSON`);
      else {
        const c = shaped(configShape, cfg, 'config');
        const n = c ? (c.rootfs?.diff_ids?.length ?? -1) : undefined;
        if (n !== undefined && n !== m.layers.length) bad(`config ${m.config.digest} names ${n} diffIDs for ${m.layers.length} layers`);
      }
    }
    for (const l of m.layers) if (!l.urls?.length) await present(l, ref, 'layer');
  }

  // a killed build's container still running over a mounted overlay: any command but fsck stops and unmounts it
  const live = opts.leftovers ? await opts.leftovers(store.root) : { containers: [], mounts: [] };
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
