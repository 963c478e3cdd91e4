import type { Store } from '../store/store.js';
import type { Descriptor, Platform } from '../image/types.js';
import { formatPlatform, platformMatches } from '../image/platform.js';
import { isIndexMediaType } from '../image/media-types.js';
import { KilnError } from '../errors/index.js';
import { parseReference } from '../registry/reference.js';
import type { BaseImage, ImageSource } from '../solver/ports.js';
import type { BuildEvent } from '../events/index.js';
import type { RegistryAccess } from '../cache/remote/index.js';

/**
 * `sha256:<hex>` (4 to 64 digits, as `kiln images` shows digests) or 64 bare
 * hex digits: an image ID or digest, never a repository name. Docker's
 * reference grammar refuses 64-hex names for the same reason; without this,
 * `FROM sha256:…` would parse as docker.io/library/sha256 and go to Docker Hub.
 */
export function isImageId(text: string): boolean {
  return /^(?:sha256:[a-f0-9]{4,64}|[a-f0-9]{64})$/.test(text);
}

/** `name[:tag]@digest` as buildx shows a resolved base; an image ID or a label that is not a reference is shown as given. */
function pinned(ref: string, digest: Descriptor['digest']): string {
  if (isImageId(ref)) return ref;
  try {
    const r = parseReference(ref);
    return `${r.name}${r.tag ? `:${r.tag}` : ''}@${digest}`;
  } catch {
    return `${ref}@${digest}`;
  }
}

/**
 * FROM and COPY --from images: the local store first (unless --pull), else the
 * registry. One resolution per reference per build, shared by every stage.
 */
export interface StoreImageSource extends ImageSource {
  /** The image `desc` (already in the store) names for `platform`; `label` names it in errors and display. */
  fromDescriptor(label: string, desc: Descriptor, platform: Platform): Promise<BaseImage>;
}

export function createImageSource(store: Store, registry: RegistryAccess & { pull: boolean }, emit: (e: BuildEvent) => void): StoreImageSource {
  const memo = new Map<string, Promise<BaseImage>>();
  return {
    resolve(refText: string, platform: Platform, signal: AbortSignal): Promise<BaseImage> {
      if (isImageId(refText)) return memoised(`${refText}|${formatPlatform(platform)}`, () => storedById(refText, platform));
      const ref = parseReference(refText).toString();
      return memoised(`${ref}|${formatPlatform(platform)}`, () => resolveOnce(ref, platform, signal));
    },
    async fromDescriptor(label: string, desc: Descriptor, platform: Platform): Promise<BaseImage> {
      const img = await imageOf(label, desc, platform);
      if ('mismatch' in img) throw img.mismatch;
      return img;
    },
  };

  function memoised(key: string, make: () => Promise<BaseImage>): Promise<BaseImage> {
    let p = memo.get(key);
    if (!p) {
      p = make();
      memo.set(key, p);
    }
    return p;
  }

  /** An image ID names content this store holds or nothing: there is no repository to pull it from. */
  async function storedById(id: string, platform: Platform): Promise<BaseImage> {
    const local = await fromStore(id, platform);
    if (local && 'mismatch' in local) throw local.mismatch;
    if (local) return local;
    throw new KilnError('NOT_FOUND', `image ${id} is not in the store; an image ID or digest alone cannot be pulled (name it as repository@sha256:…)`);
  }

  async function resolveOnce(ref: string, platform: Platform, signal: AbortSignal): Promise<BaseImage> {
    // a tag pulled for one platform names that platform's manifest only: another platform is pulled, and
    // only when the registry has none (or cannot be reached) is the local mismatch the error
    let mismatch: KilnError | undefined;
    if (!registry.pull) {
      const local = await fromStore(ref, platform);
      if (local && 'mismatch' in local) mismatch = local.mismatch;
      else if (local) return local;
    }
    const t0 = Date.now();
    emit({ type: 'phase', name: 'resolve', state: 'start', detail: ref, time: t0 });
    const { pull } = await import('../registry/pull.js');
    const pulling = pull(store, ref, {
      platform,
      insecureRegistries: registry.insecureRegistries,
      mirrors: registry.mirrors,
      signal,
      onEvent: (e) => {
        if (e.type === 'pull-progress') emit({ type: 'pull-progress', ref, digest: e.digest, mediaType: e.mediaType, done: e.done, total: e.total, phase: e.phase, time: Date.now() });
      },
    });
    const res = await (mismatch ? pulling.catch((e: unknown) => { throw new KilnError('NOT_FOUND', mismatch.message, { cause: e }); }) : pulling);
    emit({ type: 'phase', name: 'resolve', state: 'done', detail: ref, durationMs: Date.now() - t0, time: Date.now() });
    // this pull's own manifest, not the tag: pulls of the same name for other platforms run at the same time
    const pulled = await imageOf(ref, res.descriptor, platform);
    if ('mismatch' in pulled) throw pulled.mismatch;
    return pulled;
  }

  /**
   * A single-platform base serves only its platform; one that names no
   * platform at all is used with a warning, as BuildKit does.
   */
  function checkSinglePlatform(ref: string, config: { os?: string; architecture?: string; variant?: string }, platform: Platform): KilnError | undefined {
    if (!config.os || !config.architecture) {
      emit({ type: 'warning', message: `base image ${ref} names no platform; using it for ${formatPlatform(platform)}`, time: Date.now() });
      return undefined;
    }
    const have: Platform = { os: config.os, architecture: config.architecture, ...(config.variant ? { variant: config.variant } : {}) };
    if (platformMatches(platform, have)) return undefined;
    return new KilnError('NOT_FOUND', `base image ${ref} is ${formatPlatform(have)} only and has no image for ${formatPlatform(platform)}`);
  }

  async function fromStore(ref: string, platform: Platform): Promise<BaseImage | { mismatch: KilnError } | undefined> {
    const desc = await store.resolveImage(ref);
    if (!desc) return undefined;
    return imageOf(ref, desc, platform);
  }

  async function imageOf(ref: string, desc: Descriptor, platform: Platform): Promise<BaseImage | { mismatch: KilnError }> {
    const img = await store.imageFromDescriptor(desc, { platform });
    const mismatch = isIndexMediaType(desc.mediaType) ? undefined : checkSinglePlatform(ref, img.config, platform);
    if (mismatch) return { mismatch };
    return {
      manifestDigest: img.descriptor.digest,
      config: img.config,
      layers: img.layers.map((l) => ({ descriptor: l.descriptor, diffID: l.diffID })),
      resolvedName: pinned(ref, desc.digest),
    };
  }
}
