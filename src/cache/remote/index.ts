import type { Digest } from '../../image/digest.js';
import type { LayerRef } from '../../image/image.js';
import type { Store } from '../../store/store.js';
import { checkCompressionLevel } from '../../layer/compression-level.js';
import type { LayerRecompressor } from '../../layer/recompress.js';
import type { Compression } from '../../layer/types.js';
import { storeCacheArtifact } from '../document.js';
import { exportMounts } from '../mounts.js';
import type { CacheIndex, CacheRecord } from '../records.js';
import type { CacheExportSpec, CacheImportSpec } from '../spec.js';
import { ImportedCaches, LayeredCacheIndex, type CacheSource } from './imported.js';
import { exportToLocal, localSource } from './local.js';
import { exportToRegistry, registrySource, type RegistryAccess } from './registry.js';

/**
 * Shared build caches, one backend per file as BuildKit's
 * cache/remotecache/{registry,local,inline}: `importCaches` before the solve,
 * `inlineCacheRecords` when the image config is written, `exportCaches` after
 * the outputs. The mode=min/max policy (which steps' records go) lives here,
 * not in the build. A cache that cannot be read or written is a warning,
 * never a failed build.
 */
export type { RegistryAccess } from './registry.js';
export { withInlineCache } from './inline.js';

export interface CacheImport {
  /** Local records first, then the imported caches'. */
  index: CacheIndex;
  /** Makes layers an imported cache named local (a record's layer was fetched and proven when its step hit). */
  ensureLayers(layers: readonly LayerRef[]): Promise<void>;
}

export interface CacheReport {
  warn(message: string): void;
  /** One cache written (`detail` names it), for progress. */
  exported(detail: string, durationMs: number): void;
}

/** Opens the `--cache-from` caches over the local index and seeds cache mounts from them. */
export async function importCaches(store: Store, local: CacheIndex, specs: readonly CacheImportSpec[], access: RegistryAccess, warn: (msg: string) => void): Promise<CacheImport> {
  if (!specs.length) return { index: local, ensureLayers: async () => {} };
  const imported = new ImportedCaches(store, warn);
  for (const spec of specs) {
    const label = spec.type === 'registry' ? spec.ref : spec.src;
    try {
      const src: CacheSource | undefined = spec.type === 'registry' ? await registrySource(store, spec.ref, access, warn) : await localSource(store, spec, warn);
      if (!src) {
        warn(`cache import ${label}: no cache found; building without it`);
        continue;
      }
      imported.add(src);
    } catch (e) {
      // a broken or missing cache degrades to a normal build, never a failure
      warn(`cache import ${label} failed (${e instanceof Error ? e.message : String(e)}); building without it`);
    }
  }
  await imported.importMounts().catch((e: unknown) => warn(`cache mounts not imported: ${e instanceof Error ? e.message : String(e)}`));
  return {
    index: new LayeredCacheIndex(local, imported),
    ensureLayers: async (layers) => {
      for (const l of layers) await imported.ensureLayer(l);
    },
  };
}

/** What the build ran, as the export policy needs it. */
export interface BuiltSteps {
  /** Every step with its record key, the target platform's label ('' for one platform) and its stage. */
  steps: ReadonlyArray<{ target: string; stage: number; key: Digest }>;
  /** Per target label: the stages of the final image's FROM chain, whose steps are what mode=min exports. */
  chains: ReadonlyMap<string, ReadonlySet<number>>;
}

/** The build's records and the means to put their layers in another compression. */
export interface CacheExportContext {
  store: Store;
  cache: CacheIndex;
  built: BuiltSteps;
  recompressor: LayerRecompressor;
  ensureLayers(layers: readonly LayerRef[]): Promise<void>;
  /** The image's layer compression: a cache without its own gets it. */
  compression: Compression;
  level?: number;
}

/** The records `mode` selects: every step's (max), or only the final image's FROM chain (min); `only` keeps one target's. */
async function recordsFor(ctx: CacheExportContext, mode: 'min' | 'max', only?: string): Promise<CacheRecord[]> {
  const out = new Map<string, CacheRecord>();
  for (const { target, stage, key } of ctx.built.steps) {
    if (only !== undefined && target !== only) continue;
    if (mode === 'min' && !ctx.built.chains.get(target)?.has(stage)) continue;
    const rec = await ctx.cache.get(key);
    if (rec) out.set(key, rec);
  }
  return [...out.values()];
}

/**
 * Cached layers keep the compression they were made in; an exported cache
 * gets the one it asks for. A layer re-compressed here is remembered by the
 * recompressor, so the build can record it as a variant.
 */
async function recordsIn(ctx: CacheExportContext, records: CacheRecord[], want: { compression: Compression; level?: number }): Promise<CacheRecord[]> {
  const out: CacheRecord[] = [];
  for (const r of records) {
    if (!r.layer) {
      out.push(r);
      continue;
    }
    await ctx.ensureLayers([{ descriptor: r.layer, diffID: r.layer.diffID }]);
    const l = await ctx.recompressor.layer({ descriptor: r.layer, diffID: r.layer.diffID }, want);
    const { variants: _v, ...rest } = r;
    out.push({ ...rest, layer: { ...l.descriptor, diffID: l.diffID } });
  }
  return out;
}

/** `--cache-to type=inline`: one target's mode=min records in the image's compression, or undefined when not asked for. */
export async function inlineCacheRecords(specs: readonly CacheExportSpec[], ctx: CacheExportContext, target: string): Promise<CacheRecord[] | undefined> {
  if (!specs.some((c) => c.type === 'inline')) return undefined;
  return recordsIn(ctx, await recordsFor(ctx, 'min', target), { compression: ctx.compression, ...(ctx.level !== undefined ? { level: ctx.level } : {}) });
}

/** Writes every registry and local `--cache-to` (all targets' records in one artifact each); failures are warnings. */
export async function exportCaches(specs: readonly CacheExportSpec[], ctx: CacheExportContext, access: RegistryAccess, report: CacheReport): Promise<void> {
  for (const spec of specs) {
    if (spec.type === 'inline') continue;
    const label = spec.type === 'registry' ? spec.ref : spec.dest;
    const t0 = Date.now();
    try {
      const compression = spec.compression ?? ctx.compression;
      // the image's level only carries over to a cache in the same compression
      const level = spec.compressionLevel ?? (compression === ctx.compression ? ctx.level : undefined);
      if (level !== undefined) checkCompressionLevel(compression, level, `--cache-to ${label}`);
      const records = await recordsIn(ctx, await recordsFor(ctx, spec.mode), { compression, ...(level !== undefined ? { level } : {}) });
      const { mounts, busy } = spec.cacheMounts ? await exportMounts(ctx.store) : { mounts: [], busy: [] };
      if (busy.length > 0) report.warn(`cache export to ${label}: left out cache mount${busy.length > 1 ? 's' : ''} ${busy.join(', ')}: in use by a RUN of another build`);
      const artifact = await storeCacheArtifact(ctx.store, records, mounts);
      if (spec.type === 'local') await exportToLocal(ctx.store, spec.dest, spec.tag ?? 'latest', artifact);
      else await exportToRegistry(ctx.store, spec.ref, artifact, access);
      report.exported(`cache to ${label}`, Date.now() - t0);
    } catch (e) {
      // the image is built and stored; a cache that could not be written is worth a warning, not a failure
      report.warn(`cache export to ${label} failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}
