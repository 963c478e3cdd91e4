import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayerEntry, WrittenLayer } from '../layer/types.js';
import type { StepContext } from './step-context.js';

/**
 * Writes the layer of a COPY, ADD or WORKDIR. When a later step mounts it
 * (`wantSnapshot`: a RUN further down the stage, or another stage built on
 * it), the snapshot is written from the same tar as the blob and adopted by
 * the store, so the RUN does not read the blob back, decompress and unpack
 * it. A snapshot the store already has (another build made it) is left as
 * it is and the copy is dropped.
 */
export async function writeStepLayer(
  entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>,
  ctx: Pick<StepContext, 'store' | 'layer' | 'scratch'>,
  wantSnapshot: boolean,
): Promise<WrittenLayer> {
  // the layer writer (tar, compression, extraction) loads with the first layer a build writes, not
  // with this module: a cached build prepares every COPY and WORKDIR through it and writes none
  const { writeLayer } = await import('../layer/write-layer.js');
  const { store } = ctx;
  if (!wantSnapshot || !store.adoptSnapshot) return writeLayer(entries, store, ctx.layer);
  // in the build's scratch dir: the store's file system, so adopting it is a rename; removed with it after a kill
  const dir = join(ctx.scratch, `snap-${randomBytes(6).toString('hex')}`);
  try {
    const written = await writeLayer(entries, store, ctx.layer, dir);
    await store.adoptSnapshot({ descriptor: { mediaType: written.mediaType, digest: written.digest, size: written.size }, diffID: written.diffID }, dir);
    return written;
  } finally {
    // gone already when adopted
    await rm(dir, { recursive: true, force: true });
  }
}
