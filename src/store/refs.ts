import { KilnError } from '../errors/index.js';
import { isDigest, type Digest } from '../image/digest.js';
import { indexShape } from '../image/document-shapes.js';
import { isIndexMediaType, MAX_MANIFEST_BYTES } from '../image/media-types.js';
import { REF_NAME_ANNOTATION as REF_ANNOTATION, layoutIndex } from '../image/oci-layout.js';
import type { Descriptor, Index } from '../image/types.js';
import { writeFileAtomic } from './atomic-file.js';
import { withFileLock } from './flock.js';
import { readStoreJSON } from './json-file.js';
import type { StoreLayout } from './layout.js';
import { nameRefusal, refDigest } from './ref-names.js';
import type { BlobFiles } from './blobs.js';
import type { RefStore } from './types.js';

/** The annotation that names an image in an OCI layout's index.json. */
export { REF_ANNOTATION };

export interface IndexEntry {
  /** Undefined for an image kept without a name (e.g. loaded from an archive without tags). */
  ref?: string;
  descriptor: Descriptor;
}

/**
 * Names, kept in index.json as ref.name annotations (so OCI tools see them),
 * plus unnamed entries that keep an image alive. index.json is only ever
 * replaced by rename, so a read is a consistent snapshot; every change is a
 * read-modify-write under an exclusive flock.
 */
export class RefIndex implements RefStore {
  constructor(
    private readonly layout: StoreLayout,
    /** The manifest a name points to must be in the store; a name's digest is checked against the documents there. */
    private readonly blobs: Pick<BlobFiles, 'hasBlob' | 'blobSize' | 'readJSON'>,
  ) {}

  /** index.json as it is now; a damaged file is a StoreCorruptError naming it. */
  async readIndex(): Promise<Index> {
    const index = await readStoreJSON(this.layout.index, indexShape);
    if (!index) throw new KilnError('STORE', `cannot read ${this.layout.index}: it does not exist`);
    return index;
  }

  async listEntries(): Promise<IndexEntry[]> {
    return toEntries(await this.readIndex());
  }

  async resolve(ref: string): Promise<Descriptor | undefined> {
    return (await this.listEntries()).find((e) => e.ref === ref)?.descriptor;
  }

  async listRefs(): Promise<Array<{ ref: string; descriptor: Descriptor }>> {
    return (await this.listEntries()).filter((e): e is { ref: string; descriptor: Descriptor } => e.ref !== undefined);
  }

  /**
   * Names `desc`. A name with a digest (`name@sha256:…`, as a pull by digest
   * records) is kept only for the content that digest names (see pins): a
   * name is what `FROM name@digest` would otherwise trust, so the store never
   * records one that says otherwise.
   */
  async setRef(ref: string, desc: Descriptor): Promise<void> {
    const refused = nameRefusal(ref);
    if (refused) throw new KilnError('INVALID_REFERENCE', `cannot name an image "${ref}": ${refused}`);
    if (!(await this.blobs.hasBlob(desc.digest))) throw new KilnError('NOT_FOUND', `cannot tag ${ref}: manifest ${desc.digest} is not in the store`);
    if (!(await this.pins(ref, desc.digest))) {
      throw new KilnError('INVALID_REFERENCE', `cannot name ${desc.digest} "${ref}": the digest in the name is not that image's (nor of an index listing it)`);
    }
    const clean = stripRef(desc);
    await this.update((entries) => {
      for (let i = entries.length - 1; i >= 0; i--) {
        const e = entries[i]!;
        // a name replaces its old target; a named entry makes the unnamed keep-entry of the same image redundant
        if (e.ref === ref || (e.ref === undefined && e.descriptor.digest === clean.digest)) entries.splice(i, 1);
      }
      entries.push({ ref, descriptor: clean });
    });
  }

  /**
   * True when the digest in `ref` names `digest`'s content: the same digest, or
   * an index in the store that lists it (the one platform a pull by the digest
   * of a multi-platform index keeps). A name without a digest pins nothing and
   * passes. Blobs are content-addressed, so this is a check of content, not of
   * anything a name or index.json says.
   */
  async pins(ref: string, digest: Digest): Promise<boolean> {
    const pinned = refDigest(ref);
    if (pinned === undefined || pinned === digest) return true;
    if (!isDigest(pinned)) return false;
    // read whole only if it can be an index: a name may give the digest of a layer of gigabytes
    const size = await this.blobs.blobSize(pinned);
    if (size === undefined || size > MAX_MANIFEST_BYTES) return false;
    try {
      const index = await this.blobs.readJSON(pinned, indexShape);
      return index.manifests.some((m) => m.digest === digest && !isIndexMediaType(m.mediaType));
    } catch (e) {
      // a manifest or config is not an index (a damaged blob is not one either)
      if (e instanceof KilnError) return false;
      throw e;
    }
  }

  async removeRef(ref: string): Promise<boolean> {
    return this.update((entries) => {
      const i = entries.findIndex((e) => e.ref === ref);
      if (i < 0) return false;
      entries.splice(i, 1);
      return true;
    });
  }

  /** Keeps an image without a name (listed as <none>, a GC root) unless a name already points to it. */
  async keepUntagged(desc: Descriptor): Promise<void> {
    if (!(await this.blobs.hasBlob(desc.digest))) throw new KilnError('NOT_FOUND', `manifest ${desc.digest} is not in the store`);
    const clean = stripRef(desc);
    await this.update((entries) => {
      if (!entries.some((e) => e.descriptor.digest === clean.digest)) entries.push({ descriptor: clean });
    });
  }

  /** Drops every index.json entry (named or not) that points to `digest`; returns the names removed. */
  async removeDigest(digest: Digest): Promise<string[]> {
    return this.update((entries) => {
      const removed: string[] = [];
      for (let i = entries.length - 1; i >= 0; i--) {
        if (entries[i]!.descriptor.digest !== digest) continue;
        const [e] = entries.splice(i, 1);
        if (e?.ref !== undefined) removed.push(e.ref);
      }
      return removed;
    });
  }

  /** Read-modify-write of index.json under the exclusive index lock, written atomically. */
  private async update<T>(f: (entries: IndexEntry[]) => T): Promise<T> {
    return withFileLock(this.layout.indexLock, async () => {
      const entries = toEntries(await this.readIndex());
      const before = encodeIndex(entries);
      const result = f(entries);
      const after = encodeIndex(entries);
      // a rebuild re-tags the image its tag already names: nothing to write (and no fsync)
      if (after !== before) await writeFileAtomic(this.layout.index, Buffer.from(after), this.layout.tmp);
      return result;
    });
  }
}

/** index.json's text for these entries: sorted, each name in its annotation. */
function encodeIndex(entries: IndexEntry[]): string {
  const manifests = sortEntries(entries).map(({ ref, descriptor }) => {
    const d: Descriptor = { ...descriptor };
    if (ref !== undefined) d.annotations = { ...(descriptor.annotations ?? {}), [REF_ANNOTATION]: ref };
    return d;
  });
  const index: Index = layoutIndex(manifests);
  return `${JSON.stringify(index, null, 2)}\n`;
}

/** A descriptor without kiln's name annotation (and without fields a descriptor does not have). */
export function stripRef(d: Descriptor): Descriptor {
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.platform) out.platform = d.platform;
  if (d.urls) out.urls = d.urls;
  if (d.artifactType) out.artifactType = d.artifactType;
  if (d.annotations) {
    const { [REF_ANNOTATION]: _ref, ...rest } = d.annotations;
    if (Object.keys(rest).length) out.annotations = rest;
  }
  return out;
}

function toEntries(index: Index): IndexEntry[] {
  return index.manifests.map((d) => {
    const ref = d.annotations?.[REF_ANNOTATION];
    return ref === undefined ? { descriptor: stripRef(d) } : { ref, descriptor: stripRef(d) };
  });
}

function sortEntries(entries: IndexEntry[]): IndexEntry[] {
  return [...entries].sort((a, b) => {
    if (a.ref === undefined || b.ref === undefined) return a.ref === b.ref ? a.descriptor.digest.localeCompare(b.descriptor.digest) : a.ref === undefined ? 1 : -1;
    return a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0;
  });
}
