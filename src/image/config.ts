import type { Digest } from './digest.js';
import type { ContainerConfig, HistoryEntry, ImageConfig } from './types.js';
import type { LayerRef } from './image.js';
import type { Platform } from './types.js';
import { isoSeconds } from './timestamp.js';

/**
 * Config mutation helpers. Each returns a new object and leaves its input
 * untouched, so a base image's config can be shared by many builds.
 */

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A config with no layers and nothing set, for `platform`. */
export function emptyConfig(platform: Platform): ImageConfig {
  const c: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    config: {},
    rootfs: { type: 'layers', diff_ids: [] },
    history: [],
  };
  if (platform.variant) c.variant = platform.variant;
  return c;
}

/**
 * What `FROM scratch` starts from: BuildKit's empty image, WorkingDir `/` and
 * the default PATH, so scratch images run the same under every runtime.
 */
export function scratchConfig(platform: Platform): ImageConfig {
  const c = emptyConfig(platform);
  c.config = { Env: platform.os === 'windows' ? [] : [`PATH=${DEFAULT_PATH}`], WorkingDir: '/' };
  return c;
}

/**
 * Every stage's config has a PATH, as BuildKit appends the default to a base
 * image whose Env has none (Windows excepted: the OS supplies it). Returns `c`
 * itself when nothing changes.
 */
export function withDefaultPath(c: ImageConfig): ImageConfig {
  const env = c.config?.Env ?? [];
  if (c.os === 'windows' || env.some((e) => e.startsWith('PATH='))) return c;
  return { ...c, config: { ...(c.config ?? {}), Env: [...env, `PATH=${DEFAULT_PATH}`] } };
}

function cloneConfig(c: ImageConfig): ImageConfig {
  return structuredClone(c);
}

/** Shallow-merges `patch` into the container config; `null` in the patch deletes a key. */
export function patchContainerConfig(c: ImageConfig, patch: { [K in keyof ContainerConfig]?: ContainerConfig[K] | null }): ImageConfig {
  const out = cloneConfig(c);
  const cc: Record<string, unknown> = { ...(out.config ?? {}) };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    if (v === null && k !== 'Cmd' && k !== 'Entrypoint' && k !== 'OnBuild') delete cc[k];
    else cc[k] = structuredClone(v);
  }
  out.config = cc;
  return out;
}

/** Env lookup with Docker's rules (last `NAME=` wins). */
export function getEnv(c: ImageConfig, name: string): string | undefined {
  const env = c.config?.Env ?? [];
  for (let i = env.length - 1; i >= 0; i--) {
    const e = env[i]!;
    const eq = e.indexOf('=');
    if ((eq < 0 ? e : e.slice(0, eq)) === name) return eq < 0 ? '' : e.slice(eq + 1);
  }
  return undefined;
}

/** Sets (replacing in place, keeping order) or appends `NAME=value` entries. */
export function withEnv(c: ImageConfig, vars: Record<string, string> | Array<[string, string]>): ImageConfig {
  const env = [...(c.config?.Env ?? [])];
  setEnv(env, (Array.isArray(vars) ? vars : Object.entries(vars)).map(([key, value]) => ({ key, value })));
  return patchContainerConfig(c, { Env: env });
}

export function withLabels(c: ImageConfig, labels: Record<string, string>): ImageConfig {
  return patchContainerConfig(c, { Labels: { ...(c.config?.Labels ?? {}), ...labels } });
}

/** Appends a history entry; `empty_layer` marks steps that produced no layer. */
export function withHistory(c: ImageConfig, entry: HistoryEntry): ImageConfig {
  const out = cloneConfig(c);
  out.history = [...(out.history ?? []), { ...entry }];
  return out;
}

/** Appends a layer's diffID and its history entry. */
export function withLayer(c: ImageConfig, diffID: Digest, history?: Omit<HistoryEntry, 'empty_layer'>): ImageConfig {
  const out = cloneConfig(c);
  out.rootfs = { type: 'layers', diff_ids: [...out.rootfs.diff_ids, diffID] };
  if (history) out.history = [...(out.history ?? []), { ...history }];
  return out;
}

export function withCreated(c: ImageConfig, created: Date | string): ImageConfig {
  const out = cloneConfig(c);
  out.created = typeof created === 'string' ? created : isoSeconds(created);
  return out;
}

/**
 * Times the untimed entries of a history and returns the image's `created`, as BuildKit's image
 * exporter does: an entry without a time (a metadata step) takes the time of the first new layer
 * after the first untimed entry — or, past that layer, of the layer before it — and the image is
 * as old as its last entry. A rebuild whose every layer comes from the cache therefore makes the
 * same config and the same image. Undefined when no entry has a time (a metadata-only image on
 * scratch), where BuildKit writes none either.
 */
export function fillHistoryTimes(history: HistoryEntry[]): string | undefined {
  let time: string | undefined;
  let untimedSeen = false;
  for (const h of history) {
    if (h.created !== undefined) {
      time = h.created;
      if (untimedSeen) break;
    } else {
      untimedSeen = true;
    }
  }
  untimedSeen = false;
  let last: string | undefined;
  for (const h of history) {
    if (h.created !== undefined) {
      if (untimedSeen) time = h.created;
    } else {
      untimedSeen = true;
      if (time !== undefined) h.created = time;
    }
    last = h.created ?? last;
  }
  return last;
}

/**
 * An image under construction: the config plus the layers it names. Starting
 * from a base image and appending layers never changes the base.
 */
export interface ImageDraft {
  config: ImageConfig;
  layers: LayerRef[];
  annotations?: Record<string, string>;
}

export function appendLayer(draft: ImageDraft, layer: LayerRef, history?: Omit<HistoryEntry, 'empty_layer'>): ImageDraft {
  return { ...draft, config: withLayer(draft.config, layer.diffID, history), layers: [...draft.layers, layer] };
}

export function patchDraftConfig(draft: ImageDraft, f: (c: ImageConfig) => ImageConfig): ImageDraft {
  return { ...draft, config: f(draft.config) };
}

/** Position of each name in an Env list, kept beside the (caller-owned) list so ENV is O(1) per pair. */
const envIndexes = new WeakMap<string[], { length: number; at: Map<string, number> }>();

function envName(e: string): string {
  const eq = e.indexOf('=');
  return eq === -1 ? e : e.slice(0, eq);
}

/** Replaces (in place, keeping order) or appends `K=V` entries, as Docker updates Env. */
export function setEnv(env: string[], pairs: ReadonlyArray<{ key: string; value: string }>): void {
  let index = envIndexes.get(env);
  // rebuilt when the list was changed by anything else (its length tells)
  if (!index || index.length !== env.length) {
    const at = new Map<string, number>();
    env.forEach((e, i) => {
      const k = envName(e);
      if (!at.has(k)) at.set(k, i);
    });
    index = { length: env.length, at };
    envIndexes.set(env, index);
  }
  for (const { key, value } of pairs) {
    const i = index.at.get(key);
    if (i !== undefined && envName(env[i] ?? '') === key) env[i] = `${key}=${value}`;
    else {
      index.at.set(key, env.length);
      env.push(`${key}=${value}`);
    }
  }
  index.length = env.length;
}

const IMAGE_KEYS = ['created', 'author', 'architecture', 'os', 'os.version', 'os.features', 'variant', 'config', 'rootfs', 'history'];
const CONTAINER_KEYS = ['User', 'ExposedPorts', 'Env', 'Entrypoint', 'Cmd', 'Volumes', 'WorkingDir', 'Labels', 'StopSignal', 'ArgsEscaped', 'Healthcheck', 'OnBuild', 'Shell'];

/**
 * A base image's config with only the fields BuildKit's image type has (OCI's, and Docker's
 * Healthcheck, OnBuild and Shell), and no empty or null list: BuildKit unmarshals the base config
 * into that type and marshals it back, so `container_config`, `docker_version`, `Hostname` and
 * `"Cmd": null` of an old Docker image never reach the image it builds. Carried over, they gave kiln's
 * image of the same content another digest.
 */
export function knownConfigFields(c: ImageConfig): ImageConfig {
  const out: Record<string, unknown> = {};
  for (const k of IMAGE_KEYS) if ((c as unknown as Record<string, unknown>)[k] !== undefined) out[k] = (c as unknown as Record<string, unknown>)[k];
  if (c.config) {
    const cc: Record<string, unknown> = {};
    for (const k of CONTAINER_KEYS) {
      const v = (c.config as Record<string, unknown>)[k];
      if (v === undefined || v === null || (Array.isArray(v) && v.length === 0 && k !== 'Env')) continue;
      cc[k] = v;
    }
    out.config = cc;
  }
  return out as unknown as ImageConfig;
}
