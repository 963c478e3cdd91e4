/**
 * registry/ — the registry client: references, credentials (config files and
 * helpers), the undici HTTP client with token auth, mirrors and TLS, and pull,
 * push, copy and login on top of it. Failures are RegistryErrors with the HTTP
 * status and OCI error code. Pulled blobs go to the store.
 * May import: errors/, image/, rootless/, spec/, store/.
 */
export { parseReference, Reference, isLoopbackHost, DOCKER_HUB } from './reference.js';
export { RegistryClient, MANIFEST_ACCEPT } from './client.js';
export type { RegistryClientOptions, FetchedManifest, BlobSource, BlobPushOptions, BlobPushOutcome } from './client.js';
export { pull } from './pull.js';
export { checkDescriptor, checkDocumentSize } from './documents.js';
export type { PullOptions, PullResult } from './pull.js';
export { push, storeSource } from './push.js';
export type { PushOptions, PushResult } from './push.js';
export { copy } from './copy.js';
export type { CopyOptions, CopyResult } from './copy.js';
export { login, logout, normaliseRegistryName } from './login.js';
export type { LoginOptions } from './login.js';
export {
  resolveCredentials,
  dockerCredentialSource,
  staticCredentialSource,
  saveCredentials,
  eraseCredentials,
} from './credentials.js';
export type { Credentials, CredentialSource, CredentialStoreOptions, SavedTo } from './credentials.js';
export { CredentialHelper } from './credential-helper.js';
export { dockerConfigPath } from './docker-config.js';
export { parseChallenges } from './challenge.js';
export type { Challenge } from './challenge.js';
export type { RegistryEvent, RegistryEventListener, PullProgressEvent, PushProgressEvent, RegistryWarningEvent, TransferPhase } from './events.js';
export type { RegistryStore, BlobOrigin } from './store-access.js';
export type { RetryPolicy } from './retry.js';
export type { Endpoint } from './http.js';
