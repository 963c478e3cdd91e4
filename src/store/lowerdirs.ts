import type { Layer, LayerRef } from '../image/image.js';

/**
 * An image's layers as an overlay lowerdir list: each layer's snapshot
 * directory (extracted on first use, several at once), topmost first as
 * overlay and LayeredFs stack them. The one place RUN, `kiln run`, COPY
 * --from and the file-system exporters get their lower layers from.
 */
export async function lowerdirsOf(snapshots: { snapshotPath(layer: Layer | LayerRef): Promise<string> }, layers: ReadonlyArray<Layer | LayerRef>): Promise<string[]> {
  const dirs = await Promise.all(layers.map((l) => snapshots.snapshotPath(l)));
  return dirs.reverse();
}
