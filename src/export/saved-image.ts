import type { Descriptor } from '../image/types.js';

/** One image to save: its full reference (when named) and the manifest or index descriptor. */
export interface SaveItem {
  ref?: string;
  descriptor: Descriptor;
  /** More annotations for its entry in an OCI layout's index.json (BuildKit's `org.opencontainers.image.created`). */
  annotations?: Record<string, string>;
}

/** What a load put in the store. */
export interface LoadedImage {
  /** Full references tagged (empty: kept unnamed). */
  refs: string[];
  descriptor: Descriptor;
}

/** `registry/repo:tag` → tag (`latest` when the reference has only a digest or no tag). */
export function tagOf(ref: string): string | undefined {
  const name = ref.split('@')[0]!;
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? name.slice(colon + 1) : undefined;
}

/** `docker.io/library/busybox:latest` → `busybox:latest`, as `docker save`/`docker load` write names. */
export function familiarName(ref: string): string {
  if (ref.startsWith('docker.io/library/') && ref.slice('docker.io/library/'.length).split('/').length === 1) return ref.slice('docker.io/library/'.length);
  if (ref.startsWith('docker.io/')) return ref.slice('docker.io/'.length);
  return ref;
}
