import { request, type Dispatcher } from 'undici';
import { KilnError } from '../errors/index.js';
import { readBody } from './body.js';
import { parseChallenges, type Challenge } from './challenge.js';
import type { CredentialSource, Credentials } from './credentials.js';

/** `repository:<name>:<actions>`, the token-spec scope for a repository. */
export function repositoryScope(repository: string, actions: 'pull' | 'push' | 'pull,push'): string {
  return `repository:${repository}:${actions}`;
}

interface CachedToken {
  value: string;
  /** ms since epoch; a little before the real expiry so a token never dies mid-request. */
  expiresAt: number;
}

/**
 * Authentication for one registry: remembers its challenge (from the /v2/
 * ping or a 401), keeps bearer tokens per scope set until they expire, and
 * produces the Authorization header. Nothing here is ever logged.
 */
export class Authenticator {
  private challenge: Challenge | undefined;
  private readonly tokens = new Map<string, CachedToken>();
  /** Token requests in flight, so parallel blob transfers share one. */
  private readonly pending = new Map<string, Promise<CachedToken>>();
  private credsPromise: Promise<Credentials | undefined> | undefined;
  /** A refresh token the token server handed out, preferred over the password afterwards. */
  private refreshToken: string | undefined;

  /**
   * `mayUseHttp(host)` says whether a token realm on `host` may be plain
   * HTTP when credentials go to it (loopback, or listed as insecure).
   */
  constructor(
    readonly registry: string,
    private readonly source: CredentialSource | undefined,
    private readonly http: Dispatcher,
    private readonly mayUseHttp: (host: string) => boolean,
  ) {}

  /** Records the challenge of a 401 (or of the ping). Returns false when there is none kiln can answer. */
  setChallenge(header: string | string[] | undefined): boolean {
    const all = parseChallenges(header);
    const c = all.find((x) => x.scheme === 'bearer') ?? all.find((x) => x.scheme === 'basic');
    if (c) this.challenge = c;
    return c !== undefined;
  }

  get scheme(): string | undefined {
    return this.challenge?.scheme;
  }

  credentials(): Promise<Credentials | undefined> {
    this.credsPromise ??= this.source ? this.source(this.registry) : Promise.resolve(undefined);
    return this.credsPromise;
  }

  /** The header for a request needing `scopes`, fetching a token if none is cached. */
  async authorization(scopes: string[]): Promise<string | undefined> {
    const c = this.challenge;
    if (!c) return undefined;
    if (c.scheme === 'basic') return this.basicHeader();
    if (c.scheme !== 'bearer') return undefined;
    const creds = await this.credentials();
    if (creds?.registryToken) return `Bearer ${creds.registryToken}`;
    const key = cacheKey(scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.value}`;
    let p = this.pending.get(key);
    if (!p) {
      p = this.fetchToken(c, scopes, creds).finally(() => this.pending.delete(key));
      this.pending.set(key, p);
    }
    const token = await p;
    this.tokens.set(key, token);
    return `Bearer ${token.value}`;
  }

  /**
   * After a 401: take the new challenge (its scope may be wider), drop the
   * cached token, and answer with a fresh header — once; the caller gives up
   * if that one is refused too.
   */
  async reauthorize(header: string | string[] | undefined, scopes: string[]): Promise<string | undefined> {
    if (!this.setChallenge(header)) return undefined;
    this.tokens.delete(cacheKey(scopes));
    const extra = this.challenge?.params.scope?.split(' ').filter(Boolean) ?? [];
    const all = [...new Set([...scopes, ...extra])];
    this.tokens.delete(cacheKey(all));
    const h = await this.authorization(all);
    if (h && all.length !== scopes.length) {
      const t = this.tokens.get(cacheKey(all));
      if (t) this.tokens.set(cacheKey(scopes), t);
    }
    return h;
  }

  private async basicHeader(): Promise<string | undefined> {
    const creds = await this.credentials();
    if (!creds?.username || creds.password === undefined) return undefined;
    return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
  }

  private async fetchToken(c: Challenge, scopes: string[], creds: Credentials | undefined): Promise<CachedToken> {
    const realm = c.params.realm;
    if (!realm) throw new KilnError('REGISTRY_AUTH', `${this.registry}: bearer challenge without a realm`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw new KilnError('REGISTRY_AUTH', `${this.registry}: bearer challenge with an invalid realm`);
    }
    if (realmUrl.protocol !== 'https:' && realmUrl.protocol !== 'http:') throw new KilnError('REGISTRY_AUTH', `${this.registry}: bearer challenge with a ${realmUrl.protocol} realm; only http and https are used`);
    const service = c.params.service;
    const refresh = this.refreshToken ?? creds?.identityToken;
    // The realm is the registry's word and may be another host (Docker Hub's is), as in
    // Docker and containerd; but a secret never crosses a network in clear text.
    if (realmUrl.protocol === 'http:' && !this.mayUseHttp(realmUrl.host) && (refresh || (creds?.username && creds.password !== undefined))) {
      throw new KilnError('REGISTRY_AUTH', `${this.registry}: the token server ${realmUrl.origin} is plain HTTP; kiln does not send credentials over it`, {
        hint: `if ${realmUrl.host} is meant to be reached over HTTP, list it with --insecure-registry ${realmUrl.host}`,
      });
    }
    if (refresh) return this.oauthPost(realmUrl, service, scopes, { grant_type: 'refresh_token', refresh_token: refresh });

    const url = new URL(realmUrl);
    if (service) url.searchParams.set('service', service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (creds?.username && creds.password !== undefined) {
      url.searchParams.set('account', creds.username);
      headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    const res = await this.tokenRequest(url, { method: 'GET', headers });
    // some servers only speak the OAuth2 form
    if ((res.status === 404 || res.status === 405) && creds?.username && creds.password !== undefined) {
      return this.oauthPost(realmUrl, service, scopes, { grant_type: 'password', username: creds.username, password: creds.password });
    }
    return this.tokenFrom(res, !!creds?.username);
  }

  private async oauthPost(realm: URL, service: string | undefined, scopes: string[], grant: Record<string, string>): Promise<CachedToken> {
    const form = new URLSearchParams({ ...grant, client_id: 'kiln', access_type: 'offline' });
    if (service) form.set('service', service);
    if (scopes.length) form.set('scope', scopes.join(' '));
    const res = await this.tokenRequest(realm, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    });
    return this.tokenFrom(res, true);
  }

  private async tokenRequest(url: URL, init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
    try {
      // A POST carries the password or refresh token in its body, which a 307 or 308 would send
      // on to wherever it points (undici keeps the body, dropping only Authorization): not followed.
      const res = await request(url, { ...init, dispatcher: this.http, ...(init.method === 'POST' ? { maxRedirections: 0 } : {}) });
      // a token answer is a small JSON document; refuse to hold more than 1 MiB of one
      const body = await readBody(res.body, { limit: 1024 * 1024, what: `${this.registry}: token from ${url.origin}`, contentLength: res.headers['content-length'] });
      return { status: res.statusCode, body: body.toString('utf8') };
    } catch (e) {
      if (e instanceof KilnError) throw e;
      // the URL carries no secret, but keep errors short and free of headers
      throw new KilnError('REGISTRY_AUTH', `${this.registry}: token server ${url.origin} unreachable: ${(e as Error).message}`);
    }
  }

  private tokenFrom(res: { status: number; body: string }, withCredentials: boolean): CachedToken {
    if (res.status === 401 || res.status === 403) {
      throw new KilnError('REGISTRY_AUTH', withCredentials
        ? `${this.registry}: authentication failed (the token server refused the credentials)`
        : `${this.registry}: authentication required (no credentials; run kiln login ${this.registry})`);
    }
    if (res.status !== 200) throw new KilnError('REGISTRY_AUTH', `${this.registry}: token server answered ${res.status}`);
    let o: { token?: unknown; access_token?: unknown; expires_in?: unknown; refresh_token?: unknown };
    try {
      o = JSON.parse(res.body) as typeof o;
    } catch {
      throw new KilnError('REGISTRY_AUTH', `${this.registry}: token server answered something that is not JSON`);
    }
    const value = typeof o.token === 'string' && o.token ? o.token : typeof o.access_token === 'string' ? o.access_token : '';
    if (!value) throw new KilnError('REGISTRY_AUTH', `${this.registry}: token server answered without a token`);
    if (typeof o.refresh_token === 'string' && o.refresh_token) this.refreshToken = o.refresh_token;
    // the spec's default lifetime is 60 s when none is given
    const seconds = typeof o.expires_in === 'number' && o.expires_in > 0 ? o.expires_in : 60;
    return { value, expiresAt: Date.now() + Math.max(1, seconds - 10) * 1000 };
  }
}

function cacheKey(scopes: string[]): string {
  return [...scopes].sort().join(' ');
}
