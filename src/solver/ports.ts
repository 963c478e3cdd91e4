import type { Digest } from '../image/digest.js';
import type { LayerRef } from '../image/image.js';
import type { ImageConfig, Platform } from '../image/types.js';

/**
 * What the solver needs from the world, as small interfaces. The build entry
 * point wires the real store, registry client, context and sandbox into them;
 * the solver itself never opens a file or a socket.
 */

export interface BaseImage {
  /** The manifest digest: the cache chain starts from it. */
  manifestDigest: Digest;
  config: ImageConfig;
  layers: LayerRef[];
  /**
   * What the reference resolved to, for display (buildx's stage header):
   * `docker.io/library/alpine:3.20@sha256:…` with the digest the name pointed
   * to (an index for a multi-platform tag), or how a named context was loaded.
   */
  resolvedName?: string;
}

export interface ImageSource {
  /** Resolves an external image for FROM / COPY --from / RUN --mount from=, pulling when needed. */
  resolve(ref: string, platform: Platform, signal: AbortSignal): Promise<BaseImage>;
}

/** What a step's `execute` gives back: steps/ defines it, the solver consumes it. */
export type { StepOutcome } from '../steps/step-context.js';
