import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import type { Digest } from '../image/digest.js';
import type { Descriptor, ImageConfig } from '../image/types.js';
import { formatPlatform, hostPlatform, parsePlatform, platformMatches } from '../image/platform.js';
import { KilnError } from '../errors/index.js';
import { parseDockerfile, runChecks } from '../frontend/index.js';
import { planBuild } from '../plan/index.js';
import { solve, type StageResult } from '../solver/solver.js';
import type { BuildEvent } from '../solver/events.js';
import { StoreCacheIndex, type CacheIndex, type CacheRecord } from '../cache/records.js';
import { ImportedCaches, INLINE_CACHE_FIELD, LayeredCacheIndex, exportCache } from '../cache/transfer.js';
import type { LayerRef } from '../image/image.js';
import { Store } from '../store/store.js';
import { defaultRoot } from '../store/layout.js';
import { parseReference } from '../registry/reference.js';
import { createImageSource } from './image-source.js';
import { createExecutors } from './executors.js';
import { compressLayers, imageCompression, policyKey, writeOutputs, type CompressionPolicy } from './outputs.js';
import { LayerRecompressor } from '../layer/recompress.js';
import { checkCompressionLevel, type BuildOptions, type BuildResult } from './options.js';

/**
 * kiln's main job: read and plan the Dockerfile, solve the plan through the
 * cache, assemble the image, store it under its tags and write the outputs.
 */
/** Builds in flight in this process: automatic GC runs only when a build is alone, so it never frees what another has not tagged yet. */
let activeBuilds = 0;

export async function build(options: BuildOptions): Promise<BuildResult> {
  activeBuilds++;
  try {
    return await buildOnce(options);
  } finally {
    activeBuilds--;
  }
}

async function buildOnce(options: BuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const emit = (e: BuildEvent) => options.onEvent?.(e);
  const contextDir = path.resolve(options.context);
  const { text, fileName, dockerfilePath } = await readDockerfile(options, contextDir);

  const host = hostPlatform();
  const targetPlatform = options.platform ? parsePlatform(options.platform) : host;
  if (!platformMatches(host, targetPlatform)) {
    throw new KilnError('UNSUPPORTED', `--platform ${formatPlatform(targetPlatform)}: kiln builds for the host platform (${formatPlatform(host)}) only`);
  }

  const parsed = parseDockerfile(text, { file: fileName });
  const plan = planBuild(parsed, {
    ...(options.target ? { target: options.target } : {}),
    buildArgs: options.buildArgs ?? {},
    targetPlatform,
    buildPlatform: host,
  });
  const warnings = runChecks(parsed, { plan });
  for (const w of warnings) emit({ type: 'warning', message: w.message, file: w.file, line: w.line, rule: w.rule, time: Date.now() });
  const fatal = warnings.find((w) => w.error);
  if (fatal) throw new KilnError('DOCKERFILE_PLAN', `${fatal.message} (${fatal.rule})`, { location: { file: fatal.file, line: fatal.line } });

  for (const a of plan.unusedBuildArgs) {
    emit({ type: 'warning', message: `build arg "${a}" was not consumed by any stage`, time: Date.now() });
  }
  if (options.allow?.some((a) => a !== 'security.insecure' && a !== 'network.host')) {
    throw new KilnError('USAGE', `unknown entitlement in --allow (known: security.insecure, network.host)`);
  }
  const tags = (options.tags ?? []).map((t) => parseReference(t).toString());

  const root = options.root ?? defaultRoot();
  // mounts and containers of builds that were killed go first, so the store can sweep their scratch dirs;
  // a killed build always leaves a scratch dir in tmp/, so an empty tmp/ needs no sweep (nor a `runc list`)
  const leftovers = (await readdir(path.join(root, 'tmp')).catch(() => [] as string[])).filter((n) => n !== 'partial');
  if (leftovers.length) {
    const { sweepMounts } = await import('../sandbox/scratch.js');
    await sweepMounts(root).catch(() => undefined);
  }
  const store = await Store.open(root);
  try {
    const sourceDateEpoch = options.sourceDateEpoch ?? epochFromEnv();
    const access = { insecureRegistries: options.insecureRegistries ?? [], mirrors: options.registryMirrors ?? [], ...(options.signal ? { signal: options.signal } : {}) };
    const warn = (message: string) => emit({ type: 'warning', message, time: Date.now() });
    const local = new StoreCacheIndex(store.layout.cache, store.layout.tmp, (d) => store.hasBlob(d));
    let cache: CacheIndex = local;
    let imported: ImportedCaches | undefined;
    if (options.cacheFrom?.length && !options.noCache) {
      imported = await ImportedCaches.open(store, options.cacheFrom, access, warn);
      cache = new LayeredCacheIndex(local, imported);
      await imported.importMounts(store.root).catch((e: unknown) => warn(`cache mounts not imported: ${e instanceof Error ? e.message : String(e)}`));
    }
    // layers named by an imported cache are downloaded only when their content is needed
    const ensureLayers = async (layers: readonly LayerRef[]) => {
      if (imported) for (const l of layers) await imported.ensureBlob(l.descriptor);
    };
    const images = createImageSource(store, options, emit);
    // layers are written in the image's compression, so an uncached build never re-compresses
    const policy = imageCompression(options);
    const layerOptions: BuildOptions = { ...options, compression: policy.compression };
    if (policy.level !== undefined) layerOptions.compressionLevel = policy.level;
    else delete layerOptions.compressionLevel;
    const executors = await createExecutors({ store, contextDir, dockerfilePath, options: layerOptions, sourceDateEpoch, emit, ensureLayers });
    const signal = options.signal ?? new AbortController().signal;
    emit({
      type: 'build-start',
      file: fileName,
      stages: plan.stages.length,
      steps: plan.stages.reduce((n, s) => n + s.instructions.length + 1, 0),
      stageGraph: plan.stages.map((s) => ({ index: s.index, ...(s.name !== undefined ? { name: s.name } : {}), deps: [...s.deps] })),
      time: Date.now(),
    });

    let cachedSteps = 0;
    let executedSteps = 0;
    const stepKeys: Array<{ stage: number; key: Digest }> = [];
    const counting = (e: BuildEvent) => {
      if (e.type === 'step-cached' || e.type === 'step-done') stepKeys.push({ stage: e.step.stage, key: e.recordKey ?? e.key });
      if (e.type === 'step-cached') cachedSteps++;
      if (e.type === 'step-done' && (e.layer || e.usage)) executedSteps++;
      emit(e);
    };
    let result: StageResult;
    try {
      result = await solve({
        parsed,
        plan,
        images,
        cache,
        executors,
        jobs: options.jobs ?? os.availableParallelism(),
        noCache: Boolean(options.noCache),
        noCacheFilter: new Set((options.noCacheFilter ?? []).map((s) => s.toLowerCase())),
        ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
        explainCache: Boolean(options.explainCache),
        emit: counting,
        signal,
        parseTrigger: (t) => {
          const p = parseDockerfile(`FROM scratch\n${t}\n`, { file: `${fileName} (ONBUILD)` });
          const instr = p.instructions[1];
          if (!instr) throw new KilnError('DOCKERFILE_PARSE', `invalid ONBUILD trigger "${t}" in the base image`);
          return instr;
        },
      });
    } finally {
      await executors.close();
    }

    await ensureLayers(result.draft.layers);
    const chain = targetChain(plan.stages, plan.targetIndex);
    const recordsFor = async (mode: 'min' | 'max'): Promise<CacheRecord[]> => {
      const out = new Map<string, CacheRecord>();
      for (const { stage, key } of stepKeys) {
        if (mode === 'min' && !chain.has(stage)) continue;
        const rec = await cache.get(key);
        if (rec) out.set(key, rec);
      }
      return [...out.values()];
    };
    // Cached layers keep the compression they were made in; every output gets the one it asks for.
    // A layer re-compressed here is remembered by its record, so the next build re-uses it.
    const recompressor = new LayerRecompressor(store);
    const recordsIn = async (records: CacheRecord[], want: { compression: CompressionPolicy['compression']; level?: number }): Promise<CacheRecord[]> => {
      const out: CacheRecord[] = [];
      for (const r of records) {
        if (!r.layer) {
          out.push(r);
          continue;
        }
        await ensureLayers([{ descriptor: r.layer, diffID: r.layer.diffID }]);
        const l = await recompressor.layer({ descriptor: r.layer, diffID: r.layer.diffID }, want);
        const { variants: _v, ...rest } = r;
        out.push({ ...rest, layer: { ...l.descriptor, diffID: l.diffID } });
      }
      return out;
    };
    const inline = options.cacheTo?.some((c) => c.type === 'inline') ? await recordsIn(await recordsFor('min'), policy) : undefined;
    const finalLayers = await compressLayers(recompressor, result.draft.layers, policy, result.baseLayers);
    const { descriptor, config, configDigest } = await commitImage(store, { ...result, draft: { ...result.draft, layers: finalLayers } }, options, sourceDateEpoch, inline);
    for (const t of tags) await store.setRef(t, descriptor);
    const variantsOf = new Map<string, Promise<Descriptor>>([[policyKey(policy), Promise.resolve(descriptor)]]);
    const imageIn = (p: CompressionPolicy): Promise<Descriptor> => {
      let d = variantsOf.get(policyKey(p));
      if (!d) {
        d = (async () => {
          const img = await store.putImage({ config, layers: await compressLayers(recompressor, result.draft.layers, p, result.baseLayers) });
          return { ...img.descriptor, ...(descriptor.platform ? { platform: descriptor.platform } : {}) };
        })();
        variantsOf.set(policyKey(p), d);
      }
      return d;
    };
    await writeOutputs({ store, descriptor, tags, options, emit, stageResult: result, executors, imageIn });
    for (const spec of options.cacheTo ?? []) {
      if (spec.type === 'inline') continue;
      const t0 = Date.now();
      try {
        const compression = spec.compression ?? policy.compression;
        // the image's level only carries over to a cache in the same compression
        const level = spec.compressionLevel ?? (compression === policy.compression ? policy.level : undefined);
        if (level !== undefined) checkCompressionLevel(compression, level, `--cache-to ${spec.type === 'registry' ? spec.ref : spec.dest}`);
        const want = { compression, ...(level !== undefined ? { level } : {}) };
        const records = await recordsIn(await recordsFor(spec.mode), want);
        await exportCache(store, spec, records, access);
        emit({ type: 'phase', name: 'export', state: 'done', detail: `cache to ${spec.type === 'registry' ? spec.ref : spec.dest}`, durationMs: Date.now() - t0, time: Date.now() });
      } catch (e) {
        // the image is built and stored; a cache that could not be written is worth a warning, not a failure
        warn(`cache export to ${spec.type === 'registry' ? spec.ref : spec.dest} failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    // records remember their layers' other compressions: kept with them by GC, found by the next build
    if (recompressor.converted.size) {
      for (const { key } of stepKeys) {
        const rec = await cache.get(key);
        const made = rec?.layer ? recompressor.converted.get(rec.layer.digest) : undefined;
        if (rec && made?.length) await cache.addVariants(rec, made.map((l) => l.descriptor));
      }
    }
    if (options.iidfile) await writeFile(options.iidfile, configDigest);
    if (executedSteps > 0 && activeBuilds === 1 && options.gcKeepStorage !== 0) {
      const { autoGc } = await import('../store/gc.js');
      try {
        const r = await autoGc(store, options.gcKeepStorage !== undefined ? { keepStorage: options.gcKeepStorage } : {});
        if (r && r.freedBytes > 0) emit({ type: 'phase', name: 'export', state: 'done', detail: `gc freed ${r.freedBytes} bytes (${r.removedRecords.length} cache records)`, time: Date.now() });
      } catch (e) {
        warn(`automatic garbage collection failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    emit({ type: 'build-done', imageId: configDigest, manifestDigest: descriptor.digest, tags, durationMs: Date.now() - started, time: Date.now() });
    return { imageId: configDigest, manifestDigest: descriptor.digest, descriptor, tags, config, cachedSteps, executedSteps };
  } finally {
    await store.close();
  }
}

async function readDockerfile(options: BuildOptions, contextDir: string): Promise<{ text: string; fileName: string; dockerfilePath?: string }> {
  if (options.dockerfileText !== undefined) return { text: options.dockerfileText, fileName: options.fileName ?? 'Dockerfile' };
  const file = options.file ? path.resolve(options.file) : path.join(contextDir, 'Dockerfile');
  const fileName = options.fileName ?? (options.file ?? 'Dockerfile');
  try {
    return { text: await readFile(file, 'utf8'), fileName, dockerfilePath: file };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KilnError('NOT_FOUND', `cannot read Dockerfile: ${file} does not exist`);
    throw new KilnError('CONTEXT', `cannot read Dockerfile ${file}: ${(e as Error).message}`);
  }
}

function epochFromEnv(): number | undefined {
  const v = process.env['SOURCE_DATE_EPOCH'];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new KilnError('USAGE', `SOURCE_DATE_EPOCH must be a non-negative integer, not "${v}"`);
  return n;
}

/** Writes the final config and manifest blobs; labels from --label are applied last, as docker does. */
async function commitImage(
  store: Store,
  result: StageResult,
  options: BuildOptions,
  sourceDateEpoch: number | undefined,
  inlineCache: CacheRecord[] | undefined,
): Promise<{ descriptor: Descriptor; config: ImageConfig; configDigest: Digest }> {
  const config: ImageConfig = structuredClone(result.draft.config);
  if (inlineCache) (config as ImageConfig & Record<string, unknown>)[INLINE_CACHE_FIELD] = { version: 1, records: inlineCache, mounts: [] };
  if (options.labels && Object.keys(options.labels).length) {
    config.config = { ...(config.config ?? {}), Labels: { ...(config.config?.Labels ?? {}), ...options.labels } };
  }
  const created = sourceDateEpoch !== undefined ? new Date(sourceDateEpoch * 1000) : new Date();
  config.created = created.toISOString().replace(/\.\d{3}Z$/, 'Z');
  const image = await store.putImage({ config, layers: result.draft.layers });
  const descriptor: Descriptor = {
    ...image.descriptor,
    platform: { architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) },
  };
  if (!(options.tags ?? []).length) await store.keepUntagged(descriptor);
  return { descriptor, config, configDigest: image.configDescriptor.digest };
}

/** The target stage and the stages its FROM chain builds on: their steps make the final image. */
function targetChain(stages: readonly { index: number; base: { kind: string; index?: number } }[], target: number): Set<number> {
  const chain = new Set<number>();
  let cur: number | undefined = target;
  while (cur !== undefined && !chain.has(cur)) {
    chain.add(cur);
    const s = stages.find((x) => x.index === cur);
    cur = s && s.base.kind === 'stage' ? s.base.index : undefined;
  }
  return chain;
}
