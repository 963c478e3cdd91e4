/** Names of Docker's predefined build args (values are computed by plan/predefined.ts). */
export const PLATFORM_ARGS = [
  'TARGETPLATFORM', 'TARGETOS', 'TARGETARCH', 'TARGETVARIANT',
  'BUILDPLATFORM', 'BUILDOS', 'BUILDARCH', 'BUILDVARIANT',
] as const;

/**
 * `TARGETSTAGE`: the --target stage name, or `default` without one (BuildKit's
 * predefined arg; visible after `ARG TARGETSTAGE`, and in FROM).
 */
export const TARGET_STAGE_ARG = 'TARGETSTAGE';

/** Proxy args: usable without ARG, kept out of history and cache keys. */
export const PROXY_ARGS = [
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy',
  'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
] as const;

const PROXY_SET = new Set<string>(PROXY_ARGS);
const PLATFORM_SET = new Set<string>(PLATFORM_ARGS);

export function isProxyArg(name: string): boolean {
  return PROXY_SET.has(name);
}

export function isPlatformArg(name: string): boolean {
  return PLATFORM_SET.has(name);
}

export function isPredefinedArg(name: string): boolean {
  return PROXY_SET.has(name) || PLATFORM_SET.has(name) || name === TARGET_STAGE_ARG;
}
