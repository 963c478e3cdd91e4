import { KilnError } from '../errors/index.js';
import { CredentialHelper, CredentialHelperMissing } from './credential-helper.js';
import {
  authFilePaths,
  configKeyFor,
  dockerConfigPath,
  lookupByRegistry,
  readAuthFile,
  readDockerConfig,
  writeDockerConfig,
  type DockerAuthEntry,
  type DockerConfigFile,
} from './docker-config.js';

/** What a registry login is made of. Either a username/password pair or an identity (refresh) token. */
export interface Credentials {
  username?: string;
  password?: string;
  /** OAuth2 refresh token, exchanged at the token endpoint with grant_type=refresh_token. */
  identityToken?: string;
  /** A bearer token to send as is. */
  registryToken?: string;
}

/** Where credentials for a registry (`host[:port]`, `docker.io` for Docker Hub) come from. */
export type CredentialSource = (registry: string) => Promise<Credentials | undefined>;

export interface CredentialStoreOptions {
  /** Environment to read REGISTRY_AUTH_FILE, XDG_RUNTIME_DIR, XDG_CONFIG_HOME, DOCKER_CONFIG and HOME from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Looks a registry up in the files `authFilePaths` lists (containers-auth.json(5)'s
 * order: what `podman login` / `buildah login` wrote, then Docker's config.json);
 * in each file `credHelpers`, then `auths`, then `credsStore`.
 */
export async function resolveCredentials(registry: string, opts: CredentialStoreOptions = {}): Promise<Credentials | undefined> {
  const env = opts.env ?? process.env;
  for (const f of authFilePaths(env)) {
    const found = await fromConfig(await readAuthFile(f), registry, f.path, env);
    if (found) return found;
  }
  return undefined;
}

/** A CredentialSource over `resolveCredentials`, for RegistryClient. */
export function dockerCredentialSource(opts: CredentialStoreOptions = {}): CredentialSource {
  return (registry) => resolveCredentials(registry, opts);
}

/** Fixed credentials for some registries (the library's explicit option). */
export function staticCredentialSource(map: Record<string, Credentials>, fallback?: CredentialSource): CredentialSource {
  return async (registry) => map[registry] ?? (fallback ? fallback(registry) : undefined);
}

async function fromConfig(cfg: DockerConfigFile | undefined, registry: string, path: string, env: NodeJS.ProcessEnv): Promise<Credentials | undefined> {
  if (!cfg) return undefined;
  const helper = lookupByRegistry(cfg.credHelpers, registry);
  if (helper) return fromHelper(helper.value, registry, env);
  const entry = lookupByRegistry(cfg.auths, registry);
  if (entry) {
    const c = fromAuthEntry(entry.value, entry.key, path);
    if (c) return c;
  }
  if (cfg.credsStore) {
    try {
      return await fromHelper(cfg.credsStore, registry, env);
    } catch (e) {
      // a default store whose program is absent must not break anonymous pulls (credHelpers entries still do: they were asked for)
      if (e instanceof CredentialHelperMissing) return undefined;
      throw e;
    }
  }
  return undefined;
}

async function fromHelper(name: string, registry: string, env: NodeJS.ProcessEnv): Promise<Credentials | undefined> {
  const helper = new CredentialHelper(name, env);
  const got = await helper.get(configKeyFor(registry)) ?? (configKeyFor(registry) !== registry ? await helper.get(registry) : undefined);
  if (!got) return undefined;
  // Docker's convention: the username "<token>" marks an identity token
  if (got.Username === '<token>') return { identityToken: got.Secret };
  return { username: got.Username, password: got.Secret };
}

function fromAuthEntry(e: DockerAuthEntry, key: string, path: string): Credentials | undefined {
  if (e.identitytoken) return { identityToken: e.identitytoken, ...(e.username ? { username: e.username } : {}) };
  if (e.registrytoken) return { registryToken: e.registrytoken };
  if (e.auth) {
    const decoded = Buffer.from(e.auth, 'base64').toString('utf8');
    const i = decoded.indexOf(':');
    if (i < 0) throw new KilnError('REGISTRY_AUTH', `${path}: the "auth" entry for ${key} is not base64 of user:password`);
    return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
  }
  if (e.username && e.password) return { username: e.username, password: e.password };
  return undefined;
}

/** Where `saveCredentials` put them, for the CLI's message. */
export type SavedTo = { kind: 'helper'; program: string } | { kind: 'file'; path: string };

/**
 * Saves credentials the way `docker login` does: through the credential
 * helper configured for the registry (credHelpers, then credsStore), else
 * base64 in config.json's `auths` (file mode 0600).
 */
export async function saveCredentials(registry: string, creds: { username: string; password: string }, opts: CredentialStoreOptions = {}): Promise<SavedTo> {
  const env = opts.env ?? process.env;
  const path = dockerConfigPath(env);
  const cfg = (await readDockerConfig(path)) ?? {};
  const helperName = lookupByRegistry(cfg.credHelpers, registry)?.value ?? cfg.credsStore;
  const key = configKeyFor(registry);
  if (helperName) {
    const helper = new CredentialHelper(helperName, env);
    await helper.store({ ServerURL: key, Username: creds.username, Secret: creds.password });
    // Docker keeps an empty marker entry so `docker info` lists the login
    if (cfg.credsStore && !lookupByRegistry(cfg.credHelpers, registry)) {
      cfg.auths = { ...cfg.auths, [key]: {} };
      await writeDockerConfig(path, cfg);
    }
    return { kind: 'helper', program: helper.program };
  }
  const auths = { ...cfg.auths };
  const old = lookupByRegistry(auths, registry);
  if (old) delete auths[old.key];
  auths[key] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  await writeDockerConfig(path, { ...cfg, auths });
  return { kind: 'file', path };
}

/** Removes saved credentials from the helper and from config.json; false when there were none. */
export async function eraseCredentials(registry: string, opts: CredentialStoreOptions = {}): Promise<boolean> {
  const env = opts.env ?? process.env;
  const path = dockerConfigPath(env);
  const cfg = await readDockerConfig(path);
  if (!cfg) return false;
  let removed = false;
  const helperName = lookupByRegistry(cfg.credHelpers, registry)?.value ?? cfg.credsStore;
  if (helperName) {
    const helper = new CredentialHelper(helperName, env);
    if (await helper.get(configKeyFor(registry))) {
      await helper.erase(configKeyFor(registry));
      removed = true;
    }
  }
  const entry = lookupByRegistry(cfg.auths, registry);
  if (entry) {
    const auths = { ...cfg.auths };
    delete auths[entry.key];
    await writeDockerConfig(path, { ...cfg, auths });
    removed = true;
  }
  return removed;
}
