import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import type { Digest } from '../image/digest.js';
import pLimit from 'p-limit';
import type { Descriptor, ImageConfig, Platform } from '../image/types.js';
import { formatPlatform, hostPlatform } from '../image/platform.js';
import { KilnError } from '../errors/index.js';
import { openFileInRoot } from '../fs/index.js';
import { parseDockerfile, runChecks } from '../frontend/index.js';
import { readDockerfileText } from '../frontend/load.js';
import { planBuild } from '../plan/index.js';
import { solve, yieldToEventLoop, type StageResult } from '../solver/solver.js';
import { sbomScanTargets } from '../plan/sbom-scan-args.js';
import { BuildContext } from '../context/build-context.js';
import type { BuildEvent } from '../events/index.js';
import { StoreCacheIndex, type CacheRecord } from '../cache/records.js';
import { exportCaches, importCaches, inlineCacheRecords, withInlineCache, type CacheExportContext } from '../cache/remote/index.js';
import { Store } from '../store/store.js';
import { defaultRoot } from '../store/layout.js';
import { checkedLayout } from '../store/store-dirs.js';
import { parseReference } from '../registry/reference.js';
import { createImageSource } from './image-source.js';
import { createNamedContexts, namedContextKey } from './named-contexts.js';
import { VERSION } from '../version.js';
import { createExecutors } from './executors.js';
import { compressLayers, policyKey, writeOutputs, type CompressionPolicy } from './outputs.js';
import { LayerRecompressor } from '../layer/recompress.js';
import type { BuildOptions, BuildResult, PlatformResult } from './options.js';
import { layerWriteOptions, resolveBuildOptions, type DockerfileSource, type OutputSettings, type ResolvedBuildOptions } from './resolve-options.js';
import { validateEntitlements } from '../steps/validate-entitlements.js';
import { annotationsFor, attachAttestations, dockerfileDigest, effectiveAttestations, wantsAttestations, type Annotation, type AnnotationTarget, type BuiltImage } from './attestations.js';
import { CREATED_ANNOTATION, defaultAnnotations } from './default-annotations.js';
import { LOCAL_CONTEXT_URI, type BuildRecord } from '../attest/provenance.js';
import { isoSeconds } from '../image/timestamp.js';
import { fillHistoryTimes } from '../image/config.js';
import { replaceFile } from '../fs/replace-file.js';

/**
 * kiln's main job: read and plan the Dockerfile, solve the plan through the
 * cache, assemble the image, store it under its tags and write the outputs.
 */
/** Builds in flight in this process: automatic GC runs only when a build is alone, so it never frees what another has not tagged yet. */
let activeBuilds = 0;

export async function build(options: BuildOptions): Promise<BuildResult> {
  return runBuild(resolveBuildOptions(options));
}

/** A build of options already resolved (the CLI resolves them before it opens a remote context). */
export async function runBuild(options: ResolvedBuildOptions): Promise<BuildResult> {
  activeBuilds++;
  try {
    return await buildOnce(options);
  } finally {
    activeBuilds--;
  }
}

async function buildOnce(options: ResolvedBuildOptions): Promise<BuildResult> {
  const started = Date.now();
  const emit = (e: BuildEvent) => options.onEvent?.(e);
  const { contextDir } = options.source;
  const { text, fileName, dockerfilePath } = await readDockerfile(options.source);

  const host = hostPlatform();
  const targets = options.platforms;
  const multi = targets.length > 1;

  // parsing, planning and the checks are synchronous: a turn of the event loop between them lets SIGINT/SIGTERM in
  const checkpoint = async () => {
    await yieldToEventLoop();
    if (options.signal?.aborted) throw cancelledBy(options.signal);
  };
  await checkpoint();
  const parsed = parseDockerfile(text, { file: fileName });
  await checkpoint();
  // one plan per target platform: the predefined args (TARGETARCH…) and FROM --platform values differ
  // a --build-context of a stage's name replaces that stage, as in buildx
  const contextNames = new Set(Object.keys(options.buildContexts).map(namedContextKey));
  const plans = targets.map((targetPlatform) => planBuild(parsed, {
    ...(options.target ? { target: options.target } : {}),
    ...(contextNames.size ? { namedContexts: contextNames } : {}),
    buildArgs: options.buildArgs,
    targetPlatform,
    buildPlatform: host,
  }));
  const plan = plans[0]!;
  await checkpoint();
  const warnings = runChecks(parsed, { plan });
  await checkpoint();
  // a rule fires once per place in the Dockerfile, however many stages or plans reach it
  const seen = new Set<string>();
  for (const w of warnings) {
    const key = `${w.rule}\0${w.file}\0${w.line}\0${w.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    emit({ type: 'warning', message: w.message, file: w.file, line: w.line, rule: w.rule, time: Date.now() });
  }
  const fatal = warnings.find((w) => w.error);
  if (fatal) throw new KilnError('DOCKERFILE_PLAN', `${fatal.message} (${fatal.rule})`, { location: { file: fatal.file, line: fatal.line } });

  // BUILDKIT_DOCKERFILE_CHECK is read by the checks, not by a stage
  for (const a of plan.unusedBuildArgs.filter((n) => n !== 'BUILDKIT_DOCKERFILE_CHECK')) {
    emit({ type: 'warning', message: `build arg "${a}" was not consumed by any stage`, time: Date.now() });
  }
  // as BuildKit's ValidateEntitlements: a RUN asking for more than the build allows fails before any step runs
  for (const p of plans) validateEntitlements(p.stages.flatMap((s) => s.instructions), options.policy, fileName);
  const { tags } = options.outputs;

  // a caller's open Store (as pull and push take) is used as is and left open
  const given = options.store;
  // the sweep deletes in tmp/: only once the root and tmp/ are known to be this user's own (checkedLayout)
  const layout = given ? given.layout : checkedLayout(options.root ?? defaultRoot());
  const root = layout.root;
  // mounts and containers of builds that were killed go first, so the store can sweep their scratch dirs;
  // a killed build always leaves a scratch dir in tmp/, so an empty tmp/ needs no sweep (nor a `runc list`)
  const leftovers = (await readdir(layout.tmp).catch(() => [] as string[])).filter((n) => n !== 'partial');
  if (leftovers.length) {
    const { sweepMounts } = await import('../sandbox/scratch.js');
    await sweepMounts(root).catch(() => undefined);
  }
  const store = given ?? (await Store.open(root, { layout }));
  try {
    const { sourceDateEpoch } = options.layers;
    const access = options.registry;
    const warn = (message: string) => emit({ type: 'warning', message, time: Date.now() });
    const local = new StoreCacheIndex(store.layout, (d) => store.hasBlob(d));
    // layers named by an imported cache are downloaded only when their content is needed
    const { index: cache, ensureLayers } = await importCaches(store, local, options.cache.disabled ? [] : options.cache.from, access, warn);
    // every base and --from image each platform's build resolved, by digest: provenance's materials
    // (keyed by target platform, '' for a one-platform build, so an amd64 image does not name arm64 bases)
    type Material = BuildRecord['materials'][number];
    const materialsByTarget = new Map<string, Map<string, Material>>();
    const addMaterial = (target: string, m: Material) => {
      if (!materialsByTarget.has(target)) materialsByTarget.set(target, new Map());
      materialsByTarget.get(target)!.set(m.uri, m);
    };
    // URLs and git repositories ADD read: a step that does not depend on the target runs once for all
    // platforms, so these are the build's, named in every platform's provenance
    const remoteSources = new Map<string, Material>();
    const source = createImageSource(store, options.registry, emit);
    // layers are written in the image's compression, so an uncached build never re-compresses
    const policy = options.layers.compression;
    // one set for every layer the build writes (named contexts and steps), the build's signal in it
    const layerOptions = layerWriteOptions(options.layers, options.signal);
    const named = createNamedContexts({
      contexts: options.buildContexts,
      store,
      images: source,
      cache,
      layerOptions,
      sourceDateEpoch,
    });
    const imagesFor = (target: string): typeof source => ({
      ...source,
      async resolve(asWritten, platform, sig) {
        // a --build-context name stands for what it names (an image, a layout, a directory, a checkout, a download)
        const ctx = named.resolve(asWritten, platform, sig);
        const r = ctx ? await ctx : { base: await source.resolve(asWritten, platform, sig), imageRef: asWritten };
        if (r.imageRef !== undefined) {
          const uri = `pkg:docker/${parseReference(r.imageRef).toString().replace(/:([^/:@]+)$/, '@$1')}?platform=${encodeURIComponent(formatPlatform(platform))}`;
          addMaterial(target, { uri, digest: { sha256: r.base.manifestDigest.replace(/^sha256:/, '') } });
        }
        if ('material' in r && r.material) addMaterial(target, r.material);
        return r.base;
      },
    });
    const executors = await createExecutors({ store, contextDir, dockerfilePath, ...(options.source.contained ? { contained: true } : {}), policy: options.policy, layer: layerOptions, sourceDateEpoch, emit, ensureLayers,
      ...(options.signal ? { signal: options.signal } : {}),
      onRemoteSource: (m) => remoteSources.set(m.uri, m),
    });
    // a local context is named by the digest of what COPY could read from it (computed after the build); a git or URL context by its own
    let contextMaterial: Material | undefined = options.source.origin;
    const attest = effectiveAttestations(options.outputs.attestations, options.outputs.pushing);
    const signal = options.signal ?? new AbortController().signal;
    emit({
      type: 'build-start',
      file: fileName,
      stages: plans.reduce((n, p) => n + p.stages.length, 0),
      steps: plans.reduce((n, p) => n + p.stages.reduce((m, s) => m + s.instructions.length + 1, 0), 0),
      stageGraph: plan.stages.map((s) => ({ index: s.index, ...(s.name !== undefined ? { name: s.name } : {}), deps: [...s.deps] })),
      time: Date.now(),
    });

    let cachedSteps = 0;
    let executedSteps = 0;
    // per target platform (the step's `target`; '' for a one-platform build)
    const stepKeys: Array<{ target: string; stage: number; key: Digest }> = [];
    const stepsByTarget = new Map<string, BuildRecord['steps']>();
    const counting = (e: BuildEvent) => {
      if (e.type === 'step-cached' || e.type === 'step-done') stepKeys.push({ target: e.step.target ?? '', stage: e.step.stage, key: e.recordKey ?? e.key });
      const target = e.type === 'step-cached' || e.type === 'step-done' ? e.step.target ?? '' : '';
      if (!stepsByTarget.has(target)) stepsByTarget.set(target, []);
      const steps = stepsByTarget.get(target)!;
      if (e.type === 'step-cached') steps.push({ name: e.step.text, stage: e.step.stageName ?? String(e.step.stage), cacheKey: e.key, cached: true });
      if (e.type === 'step-done') {
        steps.push({
          name: e.step.text,
          stage: e.step.stageName ?? String(e.step.stage),
          cacheKey: e.key,
          cached: false,
          durationMs: e.durationMs,
          ...(e.usage ? { cpuSeconds: e.usage.cpuSeconds } : {}),
          ...(e.usage?.peakMemoryBytes !== undefined ? { memoryPeakBytes: e.usage.peakMemoryBytes } : {}),
        });
      }
      if (e.type === 'step-cached') cachedSteps++;
      if (e.type === 'step-done' && (e.layer || e.usage)) executedSteps++;
      emit(e);
    };
    const jobs = options.jobs ?? os.availableParallelism();
    const shared = multi ? { limit: pLimit(Math.max(1, jobs)), inflight: new Map() } : undefined;
    // the first platform that fails stops the others
    const solving = new AbortController();
    const onAbort = () => solving.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let results: StageResult[];
    // every stage each platform built, for the SBOMs of build stages (BUILDKIT_SBOM_SCAN_STAGE)
    const stagesByPlan = plans.map(() => new Map<number, StageResult>());
    try {
      const runs = plans.map((p, pi) => solve({
        parsed,
        plan: p,
        images: imagesFor(multi ? formatPlatform(p.targetPlatform) : ''),
        cache,
        executors,
        jobs,
        noCache: options.cache.disabled,
        noCacheFilter: options.cache.filter,
        ...(sourceDateEpoch !== undefined ? { sourceDateEpoch } : {}),
        explainCache: options.cache.explain,
        explainScope: createHash('sha256').update(`${contextDir}\0${dockerfilePath ?? fileName}`).digest('hex').slice(0, 32),
        emit: counting,
        signal: solving.signal,
        parseTrigger: (t) => {
          const pt = parseDockerfile(`FROM scratch\n${t}\n`, { file: `${fileName} (ONBUILD)` });
          const instr = pt.instructions[1];
          if (!instr) throw new KilnError('DOCKERFILE_PARSE', `invalid ONBUILD trigger "${t}" in the base image`);
          return instr;
        },
        ...(shared ? { multiPlatform: shared } : {}),
        onStage: (r) => stagesByPlan[pi]!.set(r.index, r),
      }));
      for (const r of runs) r.catch((e: unknown) => solving.abort(e));
      try {
        results = await Promise.all(runs);
      } catch (e) {
        await Promise.allSettled(runs);
        throw e;
      }
      if (attest.provenance && !contextMaterial) contextMaterial = { uri: LOCAL_CONTEXT_URI, digest: { sha256: executors.contextDigest().replace(/^sha256:/, '') } };
    } finally {
      signal.removeEventListener('abort', onAbort);
      await executors.close();
      // the layer workers' isolates and buffers would otherwise sit beside the export and the push until
      // the pool's idle timer; stopped in the background, not waited for. The pool's module is loaded
      // only if a layer was written or extracted: a cached build never imports it
      if (executedSteps > 0) void import('../layer/worker-pool.js').then((m) => m.stopLayerWorkers()).catch(() => undefined);
    }

    // A signal can arrive while a step holds the event loop (an ADD unpacking its archive through a
    // synchronous decoder), after the solver's last look at it: the build stops here, before any
    // output, instead of ending as built
    await checkpoint();
    for (const r of results) await ensureLayers(r.draft.layers);
    const labelOf = (p: Platform) => (multi ? formatPlatform(p) : '');
    const chains = new Map(plans.map((p) => [labelOf(p.targetPlatform), targetChain(p.stages, p.targetIndex)]));
    const recompressor = new LayerRecompressor(store);
    const cacheExport: CacheExportContext = {
      store, cache, recompressor, ensureLayers, built: { steps: stepKeys, chains }, compression: policy.compression,
      ...(policy.level !== undefined ? { level: policy.level } : {}),
    };
    const user = options.outputs.annotations;
    // whether the result is an index: several platforms, attestations, or annotations for an index or its entries
    const makesIndex = multi || wantsAttestations(attest) || Object.keys(annotationsFor(user, 'index')).length > 0 || Object.keys(annotationsFor(user, 'manifest-descriptor')).length > 0;
    const defaults = options.outputs.defaultAnnotations ? defaultAnnotations(sourceDateEpoch, started, options.source.origin) : undefined;
    // the defaults go first, so an --annotation of the same key wins; they never turn one image into an index
    const targets: AnnotationTarget[] = makesIndex ? ['manifest', 'index'] : ['manifest'];
    const annotations: Annotation[] = [...Object.entries(defaults ?? {}).map(([key, value]) => ({ targets, key, value })), ...user];
    const perPlatform: PlatformResult[] = [];
    for (const [i, result] of results.entries()) {
      const inline = await inlineCacheRecords(options.cache.to, cacheExport, labelOf(plans[i]!.targetPlatform));
      const layers = await compressLayers(recompressor, result.draft.layers, policy, result.baseLayers);
      const c = await commitImage(store, { ...result, draft: { ...result.draft, layers } }, { ...options.outputs, annotations }, sourceDateEpoch, inline, !multi);
      perPlatform.push({ platform: formatPlatform(c.descriptor.platform!), imageId: c.configDigest, manifestDigest: c.descriptor.digest, descriptor: c.descriptor, config: c.config });
    }
    const { descriptor: imageDescriptor, config, imageId: configDigest } = perPlatform[0]!;
    let descriptor = imageDescriptor;
    let statements: Awaited<ReturnType<typeof attachAttestations>>['statements'] = [];
    // several platforms always make an index (one manifest each, then their attestation manifests when asked for)
    if (makesIndex) {
      const t0 = Date.now();
      emit({ type: 'phase', name: 'export', state: 'start', detail: wantsAttestations(attest) ? 'attestations' : 'index', time: t0 });
      const built: BuiltImage[] = [];
      // build stages and the context to scan besides each image, as BUILDKIT_SBOM_SCAN_STAGE / _CONTEXT ask
      const extraSbomSources = (plan: (typeof plans)[number], done: Map<number, StageResult>, forced: { scanStage?: boolean; scanContext?: boolean }): NonNullable<BuiltImage['extraSboms']> => {
        const scanned = plan.stages.flatMap((st) => {
          const r = done.get(st.index);
          return r ? [{ name: st.name ?? `stage-${st.index}`, globalArgs: st.globalArgs, args: r.args, result: r }] : [];
        });
        const target = scanned.find((x) => x.result.index === plan.targetIndex)!;
        const wanted = sbomScanTargets(scanned, target, forced);
        const out: NonNullable<BuiltImage['extraSboms']> = scanned.filter((x) => wanted.stages.includes(x.name)).map((x) => ({
          name: x.name,
          view: async () => {
            await ensureLayers(x.result.draft.layers);
            // the SBOM modules load only for a build that scans
            const { layersFileSystem } = await import('../attest/sbom-statement.js');
            return layersFileSystem(store, x.result.draft.layers);
          },
        }));
        if (wanted.context) out.push({ name: 'context', view: async () => BuildContext.open(contextDir, { ...(dockerfilePath ? { dockerfile: dockerfilePath } : {}), ...(options.source.contained ? { contained: true } : {}) }) });
        return out;
      };
      for (const [i, p] of perPlatform.entries()) {
        const image = await store.imageFromDescriptor(p.descriptor);
        const record: BuildRecord = {
          builderId: attest.provenance ? attest.provenance.builderId ?? `urn:kiln:builder:${VERSION}` : '',
          dockerfile: { path: fileName, digest: dockerfileDigest(text) },
          args: { ...options.buildArgs },
          ...(options.target ? { target: options.target } : {}),
          platform: p.platform,
          materials: [...(materialsByTarget.get(labelOf(plans[i]!.targetPlatform))?.values() ?? []), ...remoteSources.values(), ...(contextMaterial ? [contextMaterial] : [])],
          ...(options.source.origin ? { configSource: options.source.origin } : {}),
          platforms: perPlatform.map((x) => x.platform),
          labels: { ...options.outputs.labels },
          startedOn: new Date(started),
          finishedOn: new Date(),
          secrets: options.policy.secrets.map((x) => x.id),
          ssh: options.policy.ssh.map((x) => x.id),
          steps: stepsByTarget.get(labelOf(plans[i]!.targetPlatform)) ?? [],
        };
        built.push({ image, descriptor: p.descriptor, record, ...(attest.sbom ? { extraSboms: extraSbomSources(plans[i]!, stagesByPlan[i]!, attest.sbom) } : {}) });
      }
      const created = sourceDateEpoch !== undefined ? new Date(sourceDateEpoch * 1000) : new Date();
      const r = await attachAttestations(store, built, { attest, ...(tags[0] ? { ref: tags[0] } : {}), created, annotations, signal });
      descriptor = r.descriptor;
      statements = r.statements;
      if (!tags.length) await store.keepUntagged(descriptor);
      emit({ type: 'phase', name: 'export', state: 'done', detail: wantsAttestations(attest) ? 'attestations' : 'index', durationMs: Date.now() - t0, time: Date.now() });
    }
    const refDescriptor = { ...descriptor, ...(Object.keys(annotationsFor(annotations, 'index-descriptor')).length ? { annotations: { ...(descriptor.annotations ?? {}), ...annotationsFor(annotations, 'index-descriptor') } } : {}) };
    for (const t of tags) await store.setRef(t, refDescriptor);
    // an output in another compression gets the same config with its own layer blobs
    const variantsOf = new Map<string, Promise<Descriptor>>([[policyKey(policy), Promise.resolve(descriptor)]]);
    const imageIn = (p: CompressionPolicy): Promise<Descriptor> => {
      let d = variantsOf.get(policyKey(p));
      if (!d) {
        d = (async () => {
          if (descriptor !== imageDescriptor) {
            throw new KilnError('UNSUPPORTED', 'an output in another compression than the build\'s is not supported for an index (several platforms, attestations or index annotations): set --compression for the whole build');
          }
          const main = await store.imageFromDescriptor(imageDescriptor);
          const result = results[0]!;
          const layers = await compressLayers(recompressor, result.draft.layers, p, result.baseLayers);
          const img = await store.putImage({ config: main.config, layers, ...(main.manifest.annotations ? { annotations: main.manifest.annotations } : {}) });
          return { ...img.descriptor, ...(imageDescriptor.platform ? { platform: imageDescriptor.platform } : {}) };
        })();
        variantsOf.set(policyKey(p), d);
      }
      return d;
    };
    await writeOutputs({
      store, descriptor, tags, outputs: options.outputs.specs, push: options.outputs.push, compression: policy, registry: access, emit, stageResult: results[0]!, executors, imageIn,
      ...(defaults ? { layoutAnnotations: { [CREATED_ANNOTATION]: defaults[CREATED_ANNOTATION]! } } : {}),
      ...(multi ? { platforms: results.map((r, i) => ({ platform: plans[i]!.targetPlatform, stageResult: r })) } : {}),
    });
    if (statements.length) {
      const { writeLocalAttestations } = await import('./attestation-files.js');
      for (const o of options.outputs.specs) if (o.type === 'local') await writeLocalAttestations(o.dest, statements, multi);
    }
    if (options.outputs.signKey && options.outputs.pushing) {
      const { signPushed } = await import('./sign-pushed.js');
      await signPushed(options.outputs.signKey, access, tags, descriptor.digest, emit);
    }
    await exportCaches(options.cache.to, cacheExport, access, {
      warn,
      exported: (detail, durationMs) => emit({ type: 'phase', name: 'export', state: 'done', detail, durationMs, time: Date.now() }),
    });
    // records remember their layers' other compressions: kept with them by GC, found by the next build
    if (recompressor.converted.size) {
      for (const { key } of stepKeys) {
        const rec = await cache.get(key);
        const made = rec?.layer ? recompressor.converted.get(rec.layer.digest) : undefined;
        if (rec && made?.length) await cache.addVariants(rec, made.map((l) => l.descriptor));
      }
    }
    // several platforms: the image is the index (its digest is what buildx writes to --iidfile)
    const imageId = multi ? descriptor.digest : configDigest;
    const manifestDigest = multi ? descriptor.digest : imageDescriptor.digest;
    if (options.outputs.iidfile) await replaceFile(options.outputs.iidfile, imageId, { what: '--iidfile' });
    if (executedSteps > 0 && activeBuilds === 1 && options.gcKeepStorage !== 0) {
      const { autoGc } = await import('../store/gc.js');
      try {
        const r = await autoGc(store, options.gcKeepStorage !== undefined ? { keepStorage: options.gcKeepStorage } : {});
        if (r && r.freedBytes > 0) emit({ type: 'phase', name: 'export', state: 'done', detail: `gc freed ${r.freedBytes} bytes (${r.removedRecords.length} cache records)`, time: Date.now() });
      } catch (e) {
        warn(`automatic garbage collection failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    emit({ type: 'build-done', imageId, manifestDigest, tags, durationMs: Date.now() - started, time: Date.now() });
    const origin = options.source.origin;
    const gitCheckouts = [...(origin?.digest['sha1'] ? [{ context: 'context', url: origin.uri, commit: origin.digest['sha1'] }] : []), ...named.gitCheckouts];
    return {
      imageId, manifestDigest, descriptor, tags, config, cachedSteps, executedSteps,
      ...(descriptor !== imageDescriptor ? { indexDigest: descriptor.digest } : {}),
      ...(multi ? { platforms: perPlatform } : {}),
      ...(gitCheckouts.length ? { gitCheckouts } : {}),
    };
  } finally {
    if (!given) await store.close();
  }
}

async function readDockerfile(source: DockerfileSource): Promise<{ text: string; fileName: string; dockerfilePath?: string }> {
  const { fileName } = source;
  if (source.text !== undefined) return { text: source.text, fileName };
  const file = source.file ?? path.join(source.contextDir, 'Dockerfile');
  const rel = path.relative(source.contextDir, file);
  if (source.contained && !rel.startsWith('..') && !path.isAbsolute(rel)) {
    // a context from elsewhere: its Dockerfile may be a link to a host file, which is resolved inside the context
    const opened = openFileInRoot(source.contextDir, rel, { chroot: true, label: 'the build context', what: rel });
    if (opened === undefined) throw new KilnError('NOT_FOUND', `cannot read Dockerfile: ${rel} does not exist in the build context`);
    try {
      return { text: await readDockerfileText(opened.path, fileName), fileName, dockerfilePath: file };
    } finally {
      opened.close();
    }
  }
  try {
    return { text: await readDockerfileText(file, fileName), fileName, dockerfilePath: file };
  } catch (e) {
    if (e instanceof KilnError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KilnError('NOT_FOUND', `cannot read Dockerfile: ${file} does not exist`);
    throw new KilnError('CONTEXT', `cannot read Dockerfile ${file}: ${(e as Error).message}`);
  }
}

/** Writes the final config and manifest blobs; labels from --label are applied last, as docker does. */
async function commitImage(
  store: Store,
  result: StageResult,
  options: Pick<OutputSettings, 'labels' | 'annotations' | 'tags'>,
  sourceDateEpoch: number | undefined,
  inlineCache: CacheRecord[] | undefined,
  keep: boolean,
): Promise<{ descriptor: Descriptor; config: ImageConfig; configDigest: Digest }> {
  const config: ImageConfig = structuredClone(result.draft.config);
  if (inlineCache) withInlineCache(config, inlineCache);
  if (Object.keys(options.labels).length) {
    config.config = { ...(config.config ?? {}), Labels: { ...(config.config?.Labels ?? {}), ...options.labels } };
  }
  // BuildKit's times: SOURCE_DATE_EPOCH, else those of the layers (a cached rebuild makes the same image)
  const created = sourceDateEpoch !== undefined ? isoSeconds(new Date(sourceDateEpoch * 1000)) : config.history ? fillHistoryTimes(config.history) : undefined;
  if (created !== undefined) config.created = created;
  else delete config.created;
  const platform = formatPlatform({ os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) });
  const annotations = annotationsFor(options.annotations, 'manifest', platform);
  const image = await store.putImage({ config, layers: result.draft.layers, ...(Object.keys(annotations).length ? { annotations } : {}) });
  const descriptor: Descriptor = {
    ...image.descriptor,
    platform: { architecture: config.architecture, os: config.os, ...(config.variant ? { variant: config.variant } : {}) },
  };
  // one manifest of a multi-platform build lives through its index
  if (keep && !options.tags.length) await store.keepUntagged(descriptor);
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

function cancelledBy(signal: AbortSignal): KilnError {
  const r: unknown = signal.reason;
  return r instanceof KilnError ? r : new KilnError('CANCELLED', 'build cancelled');
}
