import type { Descriptor, Platform } from '../image/types.js';
import type { Store } from '../store/store.js';
import { LayeredFs } from '../context/layered-fs.js';
import { KilnError } from '../errors/index.js';
import type { StageResult } from '../solver/solver.js';
import type { BuildEvent } from '../events/index.js';
import type { LayerRef } from '../image/image.js';
import type { Compression } from '../layer/types.js';
import type { LayerRecompressor } from '../layer/recompress.js';
import type { ExportSource, ExporterInstance } from '../export/exporter.js';
import { checkCompressionLevel, type BuildOptions, type LayerCompressionAttrs, type OutputSpec } from './options.js';
import type { RegistryAccess } from '../cache/remote/index.js';
import type { BuildExecutors } from './executors.js';

interface OutputInit {
  store: Store;
  descriptor: Descriptor;
  tags: string[];
  outputs: readonly OutputSpec[];
  /** `--push`: push the tags. */
  push: boolean;
  /** The compression of the image under the tags (`imageCompression`). */
  compression: CompressionPolicy;
  registry: RegistryAccess;
  emit: (e: BuildEvent) => void;
  stageResult: StageResult;
  executors: BuildExecutors;
  /** Multi-platform builds: each target's final stage; `descriptor` is then the index. */
  platforms?: Array<{ platform: Platform; stageResult: StageResult }>;
  /** The same image with its layers as `policy` asks (the stored one when the policy is the build's). */
  imageIn(policy: CompressionPolicy): Promise<Descriptor>;
  /** Annotations of the image's entry in an OCI layout's index.json (`--default-annotations`). */
  layoutAnnotations?: Record<string, string>;
}

/** How an output's layers are compressed: every layer the build made, and the base image's too with `force`. */
export interface CompressionPolicy {
  compression: Compression;
  level?: number;
  force: boolean;
}

export function policyKey(p: CompressionPolicy): string {
  return `${p.compression}|${p.level ?? ''}|${p.force}`;
}

function merged(base: CompressionPolicy, attrs: LayerCompressionAttrs, where: string): CompressionPolicy {
  const out: CompressionPolicy = { compression: attrs.compression ?? base.compression, force: attrs.forceCompression ?? base.force };
  // a level belongs to the compression it was given with: --compression-level 19 does not carry over to -o compression=gzip
  const level = attrs.compressionLevel ?? (attrs.compression === undefined || attrs.compression === base.compression ? base.level : undefined);
  if (level !== undefined) {
    checkCompressionLevel(out.compression, level, where);
    out.level = level;
  }
  return out;
}

/** The outputs that stand for the build's own tags (`-t`): an image or registry output without `name=`. */
function isTagOutput(o: OutputSpec): boolean {
  return (o.type === 'image' || o.type === 'registry') && !o.name;
}

/**
 * The compression of the image stored under the build's tags, and of the
 * layers the build writes: `--compression`/`--compression-level`/
 * `forceCompression`, overridden by the attributes of an `-o type=image` or
 * `type=registry` output without `name=` (buildx gives such an output the
 * `-t` names). Default gzip.
 */
export function imageCompression(options: Pick<BuildOptions, 'compression' | 'compressionLevel' | 'forceCompression' | 'outputs'>): CompressionPolicy {
  const base: CompressionPolicy = { compression: options.compression ?? 'gzip', force: options.forceCompression ?? false };
  if (options.compressionLevel !== undefined) {
    checkCompressionLevel(base.compression, options.compressionLevel, '--compression-level');
    base.level = options.compressionLevel;
  }
  const own = (options.outputs ?? []).flatMap((o) => ((o.type === 'image' || o.type === 'registry') && !o.name ? [merged(base, o, `--output type=${o.type}`)] : []));
  const first = own[0];
  if (first && own.some((p) => policyKey(p) !== policyKey(first))) {
    throw new KilnError('USAGE', 'two --output specs for the -t tags ask for different compression');
  }
  return first ?? base;
}

/** The compression one output asks for (its own attributes over the build's). */
export function outputCompression(o: OutputSpec, main: CompressionPolicy): CompressionPolicy {
  if ((o.type !== 'image' && o.type !== 'registry' && o.type !== 'oci') || isTagOutput(o)) return main;
  return merged(main, o, `--output type=${o.type}`);
}

/** `layers` as `policy` wants them: the bottom `baseLayers` (the base image's) only when forced. */
export function compressLayers(conv: LayerRecompressor, layers: readonly LayerRef[], policy: CompressionPolicy, baseLayers: number): Promise<LayerRef[]> {
  const want = { compression: policy.compression, ...(policy.level !== undefined ? { level: policy.level } : {}) };
  return Promise.all(layers.map((l, i) => (i < baseLayers && !policy.force ? Promise.resolve(l) : conv.layer(l, want))));
}

/**
 * Everything besides the store: names and registry pushes here, files
 * through export/'s exporters (oci and docker archives, the final file system
 * as a directory or a tar). The image is already in the store under its tags
 * when these run.
 */
export async function writeOutputs(init: OutputInit): Promise<void> {
  const outputs: OutputSpec[] = [...init.outputs];
  const pushTags = new Set<string>(init.push ? init.tags : []);
  for (const o of outputs) {
    const t0 = Date.now();
    init.emit({ type: 'phase', name: 'export', state: 'start', detail: o.type, time: t0 });
    switch (o.type) {
      case 'image':
        if (o.name) {
          const desc = await init.imageIn(outputCompression(o, init.compression));
          for (const n of o.name) await tagAs(init, n, desc, o.push ? pushTags : undefined);
        } else if (o.push) for (const t of init.tags) pushTags.add(t);
        break;
      case 'registry': {
        const names = o.name ?? init.tags;
        if (!names.length) throw new KilnError('USAGE', '--output type=registry needs name=… or -t');
        const desc = await init.imageIn(outputCompression(o, init.compression));
        for (const n of names) await tagAs(init, n, desc, pushTags);
        break;
      }
      case 'oci':
      case 'docker':
      case 'local':
      case 'tar':
        await (await exporterFor(o)).export(exportSource(init, o));
        break;
    }
    init.emit({ type: 'phase', name: 'export', state: 'done', detail: o.type, durationMs: Date.now() - t0, time: Date.now() });
  }
  if (pushTags.size) {
    const { push } = await import('../registry/push.js');
    for (const ref of pushTags) {
      const t0 = Date.now();
      init.emit({ type: 'phase', name: 'push', state: 'start', detail: ref, time: t0 });
      await push(init.store, ref, undefined, {
        insecureRegistries: init.registry.insecureRegistries,
        mirrors: init.registry.mirrors,
        ...(init.registry.signal ? { signal: init.registry.signal } : {}),
        onEvent: (e) => {
          if (e.type === 'push-progress') init.emit({ type: 'push-progress', ref, digest: e.digest, mediaType: e.mediaType, done: e.done, total: e.total, phase: e.phase, time: Date.now() });
        },
      });
      init.emit({ type: 'phase', name: 'push', state: 'done', detail: ref, durationMs: Date.now() - t0, time: Date.now() });
    }
  }
}

async function tagAs(init: OutputInit, name: string, desc: Descriptor, pushSet: Set<string> | undefined): Promise<void> {
  const { parseReference } = await import('../registry/reference.js');
  const ref = parseReference(name).toString();
  await init.store.setRef(ref, desc);
  pushSet?.add(ref);
}

/**
 * The export/ instance for a file output. Each exporter is imported when an output asks for it:
 * a build that only tags an image (a cached rebuild above all) never loads the archive writers.
 */
async function exporterFor(o: Extract<OutputSpec, { type: 'oci' | 'docker' | 'local' | 'tar' }>): Promise<ExporterInstance> {
  switch (o.type) {
    case 'oci':
      return (await import('../export/oci-archive.js')).ociExporter.resolve(o);
    case 'docker':
      return (await import('../export/docker-archive.js')).dockerExporter.resolve(o);
    case 'local':
      return (await import('../export/local.js')).localExporter.resolve(o);
    case 'tar':
      return (await import('../export/tar.js')).tarExporter.resolve(o);
  }
}

function exportSource(init: OutputInit, o: OutputSpec): ExportSource {
  return {
    store: init.store,
    descriptor: init.descriptor,
    tags: init.tags,
    ...(init.layoutAnnotations ? { layoutAnnotations: init.layoutAnnotations } : {}),
    image: () => init.imageIn(outputCompression(o, init.compression)),
    filesystems: async () => {
      if (!init.platforms) return [{ fs: await finalFs(init, init.stageResult) }];
      return Promise.all(init.platforms.map(async (p) => ({ platform: p.platform, fs: await finalFs(init, p.stageResult) })));
    },
  };
}

async function finalFs(init: OutputInit, result: StageResult): Promise<LayeredFs> {
  return new LayeredFs(await init.executors.lowerdirs(result.draft.layers), 'image');
}
