import { KilnError } from '../errors/index.js';
import { RegistryClient, type RegistryClientOptions } from './client.js';
import { eraseCredentials, saveCredentials, staticCredentialSource, type CredentialStoreOptions, type SavedTo } from './credentials.js';
import { registryOfConfigKey } from './docker-config.js';

export interface LoginOptions extends Omit<RegistryClientOptions, 'credentials'>, CredentialStoreOptions {}

/** `ghcr.io`, `https://index.docker.io/v1/`, `localhost:5000` → the registry name credentials are filed under. */
export function normaliseRegistryName(s: string): string {
  const r = registryOfConfigKey(s.trim());
  if (!r || /[\s/@]/.test(r)) throw new KilnError('USAGE', `invalid registry "${s}" (want host[:port])`);
  return r;
}

/**
 * Checks the credentials against the registry (a /v2/ request, through the
 * token server when the registry uses one), then saves them as `docker
 * login` does. Nothing is saved when the check fails.
 */
export async function login(registry: string, creds: { username: string; password: string }, opts: LoginOptions = {}): Promise<SavedTo> {
  const name = normaliseRegistryName(registry);
  if (!creds.username) throw new KilnError('USAGE', 'login needs a username');
  if (!creds.password) throw new KilnError('USAGE', 'login needs a password');
  const client = new RegistryClient({ ...opts, credentials: staticCredentialSource({ [name]: creds }) });
  try {
    await client.checkLogin(name);
  } finally {
    await client.close();
  }
  return saveCredentials(name, creds, opts);
}

/** Forgets saved credentials; false when there were none. */
export async function logout(registry: string, opts: CredentialStoreOptions = {}): Promise<boolean> {
  return eraseCredentials(normaliseRegistryName(registry), opts);
}
