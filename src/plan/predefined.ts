/** Docker's predefined build args: the platform family, TARGETSTAGE and the proxy family. */
import type { Platform } from '../image/types.js';
import { formatPlatform, normalisePlatform } from '../image/platform.js';
import { PROXY_ARGS, TARGET_STAGE_ARG } from '../frontend/builtin-args.js';
import type { PredefinedArg } from './types.js';

export { PLATFORM_ARGS, PROXY_ARGS, TARGET_STAGE_ARG, isPlatformArg, isPredefinedArg, isProxyArg } from '../frontend/builtin-args.js';

// one spelling of a platform for the whole project: TARGETPLATFORM for linux/arm64/v8 is linux/arm64, as BuildKit gives it
export { formatPlatform };

/**
 * The platform family from the normalised platforms (TARGETVARIANT is empty for arm64/v8, v7 for a bare arm),
 * TARGETSTAGE and the proxies given as build args. `targetStage`: the --target name as given; undefined or empty = no target (`default`).
 */
export function predefinedArgs(targetPlatform: Platform, buildPlatform: Platform, buildArgs: Record<string, string>, targetStage?: string): PredefinedArg[] {
  const target = normalisePlatform(targetPlatform);
  const build = normalisePlatform(buildPlatform);
  const out: PredefinedArg[] = [
    { name: 'TARGETPLATFORM', value: formatPlatform(target), hidden: false },
    { name: 'TARGETOS', value: target.os, hidden: false },
    { name: 'TARGETARCH', value: target.architecture, hidden: false },
    { name: 'TARGETVARIANT', value: target.variant ?? '', hidden: false },
    { name: 'BUILDPLATFORM', value: formatPlatform(build), hidden: false },
    { name: 'BUILDOS', value: build.os, hidden: false },
    { name: 'BUILDARCH', value: build.architecture, hidden: false },
    { name: 'BUILDVARIANT', value: build.variant ?? '', hidden: false },
    { name: TARGET_STAGE_ARG, value: targetStage || 'default', hidden: false },
  ];
  for (const name of PROXY_ARGS) {
    const v = buildArgs[name];
    if (v !== undefined) out.push({ name, value: v, hidden: true });
  }
  return out;
}
