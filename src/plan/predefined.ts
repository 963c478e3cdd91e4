/** Docker's predefined build args: the platform family, TARGETSTAGE and the proxy family. */
import type { Platform } from '../image/types.js';
import { PROXY_ARGS, TARGET_STAGE_ARG } from '../frontend/builtin-args.js';
import type { PredefinedArg } from './types.js';

export { PLATFORM_ARGS, PROXY_ARGS, TARGET_STAGE_ARG, isPlatformArg, isPredefinedArg, isProxyArg } from '../frontend/builtin-args.js';

/** `linux/arm64/v8` form of a platform. */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** `targetStage`: the --target name as given; undefined or empty = no target (`default`). */
export function predefinedArgs(target: Platform, build: Platform, buildArgs: Record<string, string>, targetStage?: string): PredefinedArg[] {
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
