import type { FsView } from '../context/fs-view.js';
import type { Descriptor, Platform } from '../image/types.js';
import type { Store } from '../store/store.js';

/**
 * One exporter per output type, in two steps as BuildKit's
 * `exporter.Exporter` → `ExporterInstance`: `resolve` takes the output's
 * attributes (checked when the spec was parsed) and returns the instance that
 * `export`s the built image. The image is already in the store under its tags.
 */
export interface Exporter<Spec> {
  resolve(spec: Spec): ExporterInstance;
}

export interface ExporterInstance {
  /** What progress shows for this output (`local`, `oci`, …). */
  readonly name: string;
  export(src: ExportSource): Promise<void>;
}

/** The final file system of one target platform (`platform` set when the build made several). */
export interface PlatformFs {
  platform?: Platform;
  fs: FsView;
}

/** What an exporter reads of a finished build; file systems and compressed variants are made only when asked for. */
export interface ExportSource {
  store: Store;
  /** The image (or index) stored under the build's tags. */
  descriptor: Descriptor;
  /** Full references of the build's `-t` names. */
  tags: string[];
  /** Annotations for the image's entry in an OCI layout's index.json (`--default-annotations`). */
  layoutAnnotations?: Record<string, string>;
  /** The image with its layers compressed as this output asks (the stored one when it asks for nothing else). */
  image(): Promise<Descriptor>;
  /** The final file system of every target platform, in the build's platform order. */
  filesystems(): Promise<PlatformFs[]>;
}
