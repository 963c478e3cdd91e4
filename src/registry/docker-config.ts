import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { KilnError } from '../errors/index.js';
import { DOCKER_HUB, DOCKER_HUB_API, DOCKER_HUB_CONFIG_KEY } from './reference.js';
import { rootlessSession } from '../rootless/session.js';

/** The parts of Docker's config.json (and Podman's auth.json) kiln reads and writes. */
export interface DockerAuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
  registrytoken?: string;
}

export interface DockerConfigFile {
  auths?: Record<string, DockerAuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [other: string]: unknown;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  return join(dir, 'config.json');
}

/** One file of the credential search: `legacy` = ~/.dockercfg, whose top level is the `auths` map. */
export interface AuthFile {
  path: string;
  legacy?: boolean;
}

/**
 * The files credentials are read from, in order, as containers/image
 * (podman, buildah, skopeo) searches them: `$REGISTRY_AUTH_FILE` alone when
 * set; else `$XDG_RUNTIME_DIR/containers/auth.json` (`/run/containers/<uid>/auth.json`
 * without XDG_RUNTIME_DIR), `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`,
 * Docker's config.json (`$DOCKER_CONFIG` or ~/.docker), then ~/.dockercfg.
 * The first file that has the registry wins.
 */
// in rootless mode the process is uid 0 of kiln's namespace; the per-user paths are the real user's
export function authFilePaths(env: NodeJS.ProcessEnv = process.env, uid = rootlessSession()?.uid ?? process.getuid?.() ?? 0): AuthFile[] {
  if (env.REGISTRY_AUTH_FILE) return [{ path: env.REGISTRY_AUTH_FILE }];
  const home = env.HOME || homedir();
  return [
    { path: env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'containers', 'auth.json') : `/run/containers/${uid}/auth.json` },
    { path: join(env.XDG_CONFIG_HOME || join(home, '.config'), 'containers', 'auth.json') },
    { path: dockerConfigPath(env) },
    { path: join(home, '.dockercfg'), legacy: true },
  ];
}

/** Reads one file of the search; a legacy ~/.dockercfg is returned as `{ auths }`. */
export async function readAuthFile(f: AuthFile): Promise<DockerConfigFile | undefined> {
  const cfg = await readDockerConfig(f.path);
  if (!cfg || !f.legacy) return cfg;
  return { auths: cfg as Record<string, DockerAuthEntry> };
}

export async function readDockerConfig(path: string): Promise<DockerConfigFile | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // ENOTDIR: a path component is a file (e.g. a stale XDG_RUNTIME_DIR); the file is simply not there
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new KilnError('REGISTRY_AUTH', `cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    const o: unknown = JSON.parse(text);
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new Error('not an object');
    return o as DockerConfigFile;
  } catch (e) {
    throw new KilnError('REGISTRY_AUTH', `${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Temp file + rename, mode 0600: the file holds secrets and readers must never see half of it. */
export async function writeDockerConfig(path: string, cfg: DockerConfigFile): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(cfg, null, '\t')}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

/**
 * The keys a registry may be filed under: Docker Hub has its legacy URL
 * key; other hosts may appear bare or as a URL with scheme and path.
 */
export function configKeysFor(registry: string): string[] {
  if (registry === DOCKER_HUB) return [DOCKER_HUB_CONFIG_KEY, 'index.docker.io', DOCKER_HUB, DOCKER_HUB_API, 'https://index.docker.io/v1'];
  return [registry, `https://${registry}`, `http://${registry}`];
}

/** The key kiln writes for a registry (Docker's spelling). */
export function configKeyFor(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_CONFIG_KEY : registry;
}

/** The host:port a config key names (`https://host/v1/` → `host`), Docker Hub's aliases folded to docker.io. */
export function registryOfConfigKey(key: string): string {
  let k = key.replace(/^[a-z]+:\/\//i, '');
  k = k.split('/')[0] ?? k;
  if (k === 'index.docker.io' || k === DOCKER_HUB_API) return DOCKER_HUB;
  return k;
}

/** Finds the entry for `registry` in a map keyed loosely (auths, credHelpers). */
export function lookupByRegistry<T>(map: Record<string, T> | undefined, registry: string): { key: string; value: T } | undefined {
  if (!map) return undefined;
  for (const k of configKeysFor(registry)) {
    if (Object.hasOwn(map, k)) return { key: k, value: map[k] as T };
  }
  for (const [k, v] of Object.entries(map)) {
    if (registryOfConfigKey(k) === registry) return { key: k, value: v };
  }
  return undefined;
}
