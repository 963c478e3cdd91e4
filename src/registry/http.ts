import { Readable } from 'node:stream';
import { request, Agent, interceptors, type Dispatcher } from 'undici';
import { isKilnError, KilnError, RegistryError } from '../errors/index.js';
import { Authenticator } from './auth.js';
import { ERROR_BODY_LIMIT, readBody } from './body.js';
import type { CredentialSource } from './credentials.js';
import { DOCKER_HUB, DOCKER_HUB_API, isLoopbackHost, type Reference } from './reference.js';
import { DEFAULT_RETRY, isRetryableError, isRetryableStatus, retryDelay, sleep, type RetryPolicy } from './retry.js';
import { DEFAULT_CERTS_DIRS, Transport } from './transport.js';

/** One place a repository can be reached: the registry itself or a mirror of it. */
export interface Endpoint {
  /** host[:port] the requests go to. */
  host: string;
  /** The registry name credentials are filed under (docker.io for Docker Hub and its API host). */
  credentialKey: string;
  /** Fixed scheme (mirrors given as URLs); otherwise probed. */
  scheme?: 'http' | 'https';
  mirror: boolean;
}

export interface HttpOptions {
  insecureRegistries?: string[];
  /** Mirror URLs for docker.io, tried first. */
  mirrors?: string[];
  credentials?: CredentialSource;
  certsDirs?: string[];
  retry?: Partial<RetryPolicy>;
  connectionsPerHost?: number;
  http2?: boolean;
  userAgent?: string;
  /** Request traces: method, path without query, status. Never headers or bodies. */
  debug?: (line: string) => void;
  /** Aborts every request (and waits between retries) when signalled. */
  signal?: AbortSignal;
  /** Told about retries so progress displays can say so. */
  onRetry?: (what: string, attempt: number, reason: string) => void;
}

export type HttpMethod = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
export type RequestBody = string | Buffer | Uint8Array | AsyncIterable<Uint8Array> | null;

export interface SendOptions {
  method: HttpMethod;
  /** A `/v2/…` path, or an absolute URL (a Location the registry gave). */
  url: string;
  headers?: Record<string, string>;
  /** Called once per attempt so a streamed body can be made again. */
  body?: () => RequestBody;
  scopes: string[];
  /** Statuses that are success. */
  ok: number[];
  /** Statuses handed back to the caller rather than thrown (e.g. 404 for HEAD). */
  pass?: number[];
  /** False for requests whose repetition would be wrong; default true. */
  retry?: boolean;
  /** What the request is about, for errors: `manifest docker.io/library/busybox:latest`. */
  what: string;
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The URL actually requested (Location headers resolve against it). */
  url: string;
  body: Dispatcher.ResponseData['body'];
}

interface Host {
  transport: Transport;
  auth: Authenticator;
  ready: Promise<void> | undefined;
}

/**
 * The session layer of the client: per-host transports and authenticators,
 * the /v2/ ping that learns scheme and challenge, and `send`, which adds
 * auth, retries 401 once with a fresh token, and retries transient failures
 * with backoff. Errors carry the registry's OCI error code and message but
 * never a header, token or query string.
 */
export class RegistryHttp {
  readonly opts: HttpOptions;
  readonly retry: RetryPolicy;
  private readonly hosts = new Map<string, Host>();
  /** Connection pools of hosts registries redirected to (blob CDNs), the most recent MAX_REDIRECT_HOSTS. */
  private readonly redirectTransports = new Map<string, Transport>();
  /** For token realms (a registry request's redirects are followed by `exchange`, each host with its own transport). */
  private readonly shared: Agent;
  private readonly sharedDispatcher: Dispatcher;

  constructor(opts: HttpOptions = {}) {
    this.opts = opts;
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.shared = new Agent({ keepAliveTimeout: 30_000 });
    this.sharedDispatcher = this.shared.compose(interceptors.redirect({ maxRedirections: 5 }));
  }

  /** The endpoints for pulling `ref`, mirrors first (only docker.io has mirrors). */
  endpointsFor(ref: Reference, forPull: boolean): Endpoint[] {
    const own: Endpoint = ref.registry === DOCKER_HUB
      ? { host: DOCKER_HUB_API, credentialKey: DOCKER_HUB, mirror: false }
      : { host: ref.registry, credentialKey: ref.registry, mirror: false };
    if (!forPull || ref.registry !== DOCKER_HUB || !this.opts.mirrors?.length) return [own];
    const mirrors = this.opts.mirrors.map((m): Endpoint => {
      const u = new URL(m.includes('://') ? m : `https://${m}`);
      return { host: u.host, credentialKey: u.host, scheme: u.protocol === 'http:' ? 'http' : 'https', mirror: true };
    });
    return [...mirrors, own];
  }

  host(ep: Endpoint): Host {
    const key = `${ep.scheme ?? ''}://${ep.host}`;
    let h = this.hosts.get(key);
    if (!h) {
      const transport = this.newTransport(ep.host, this.listedInsecure(ep.host, ep.credentialKey), ep.scheme);
      // A realm may be plain HTTP where HTTP is allowed, and beside a registry already spoken to
      // over HTTP on the same host (registry:2 on :5000 with its token server on :5001): the
      // credentials would cross no network the registry's own traffic does not.
      const realmMayUseHttp = (host: string): boolean => this.mayUseHttp(host) || (transport.origin?.startsWith('http://') === true && hostOnly(host) === hostOnly(ep.host));
      h = { transport, auth: new Authenticator(ep.credentialKey, this.opts.credentials, this.sharedDispatcher, realmMayUseHttp), ready: undefined };
      this.hosts.set(key, h);
    }
    return h;
  }

  /** Whether `host` may be spoken to over plain HTTP: loopback, or listed as insecure. */
  mayUseHttp(host: string): boolean {
    return isLoopbackHost(host) || this.listedInsecure(host);
  }

  /** Whether `host` (or `alias`, the name its credentials are filed under) is listed with --insecure-registry. */
  private listedInsecure(host: string, alias = host): boolean {
    return (this.opts.insecureRegistries ?? []).some((r) => r === host || r === alias || r === hostOnly(host));
  }

  /** Pings /v2/ once per host: picks the scheme and learns the auth challenge. */
  ensureReady(ep: Endpoint): Promise<void> {
    const h = this.host(ep);
    h.ready ??= this.ping(ep, h).catch((e: unknown) => {
      h.ready = undefined;
      throw e;
    });
    return h.ready;
  }

  private async ping(ep: Endpoint, h: Host): Promise<void> {
    const dispatcher = await h.transport.dispatcher();
    let lastError: unknown;
    const attempts = Math.min(this.retry.maxAttempts, 3);
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let firstError: unknown;
      for (const origin of h.transport.candidateOrigins()) {
        try {
          const { res, url } = await this.exchange(dispatcher, origin, { method: 'GET', url: `${origin}/v2/`, headers: this.baseHeaders(), what: `registry ${ep.host}` });
          await readBody(res.body, { limit: ERROR_BODY_LIMIT, what: `registry ${ep.host}`, truncate: true });
          // a TLS-only server answers plain HTTP with 400: that is not a registry speaking HTTP
          if (origin.startsWith('http://') && firstError !== undefined && res.statusCode === 400) continue;
          h.transport.setScheme(origin);
          // a challenge counts only from the registry itself, never from where it redirected to
          if (res.statusCode === 401 && sameOrigin(url, origin)) h.auth.setChallenge(res.headers['www-authenticate']);
          return;
        } catch (e) {
          firstError ??= e;
          lastError = firstError;
        }
      }
      if (attempt < attempts) await sleep(retryDelay(this.retry, attempt));
    }
    const how = h.transport.mayUseHttp ? 'HTTPS or HTTP' : 'HTTPS';
    throw new KilnError('REGISTRY', `cannot reach registry ${ep.host} over ${how}: ${errorText(lastError)}`, {
      cause: lastError,
      ...(h.transport.mayUseHttp ? {} : { hint: `for a plain-HTTP registry use --insecure-registry ${ep.host}` }),
    });
  }

  async send(ep: Endpoint, o: SendOptions): Promise<Response> {
    await this.ensureReady(ep);
    const h = this.host(ep);
    const dispatcher = await h.transport.dispatcher();
    const url = o.url.startsWith('/') ? `${h.transport.origin}${o.url}` : o.url;
    const origin = h.transport.origin;
    const started = Date.now();
    let reauthed = false;
    let authHeader = await h.auth.authorization(o.scopes);
    for (let attempt = 1; ; attempt++) {
      let exchanged: { res: Dispatcher.ResponseData; url: string };
      try {
        this.checkAborted(o.what);
        exchanged = await this.exchange(dispatcher, origin, { method: o.method, url, headers: { ...this.baseHeaders(), ...o.headers }, authorization: authHeader, body: o.body, what: o.what });
      } catch (e) {
        this.checkAborted(o.what);
        if (isKilnError(e)) throw e;
        this.trace(o.method, url, errorText(e));
        if (o.retry !== false && isRetryableError(e) && this.mayRetry(attempt, started)) {
          const delay = retryDelay(this.retry, attempt);
          this.opts.onRetry?.(o.what, attempt, errorText(e));
          await sleep(delay);
          continue;
        }
        throw new KilnError('REGISTRY', `${o.what}: ${o.method} ${redactUrl(url)} failed: ${errorText(e)}`, { cause: e });
      }
      const { res } = exchanged;
      const status = res.statusCode;
      if (o.ok.includes(status) || o.pass?.includes(status)) return { status, headers: res.headers, url: exchanged.url, body: res.body };

      if (status === 401 && !sameOrigin(exchanged.url, origin)) {
        // A host the registry redirected to asks for credentials: its challenge is not the
        // registry's, and answering it would hand the registry's credentials to that host.
        await res.body.dump();
        throw new RegistryError('REGISTRY_AUTH', `${o.what}: the registry redirected to ${new URL(exchanged.url).origin}, which asked for credentials; kiln sends the registry's credentials to the registry only`, { status });
      }
      if (status === 401 && !reauthed) {
        reauthed = true;
        await res.body.dump();
        const fresh = await h.auth.reauthorize(res.headers['www-authenticate'], o.scopes);
        if (fresh !== undefined) {
          authHeader = fresh;
          attempt--;
          continue;
        }
        throw await this.errorFor(o, status, undefined, ep, h);
      }
      if (o.retry !== false && isRetryableStatus(status) && this.mayRetry(attempt, started)) {
        await res.body.dump();
        const delay = retryDelay(this.retry, attempt, res.headers['retry-after']);
        this.opts.onRetry?.(o.what, attempt, `HTTP ${status}`);
        await sleep(delay);
        continue;
      }
      throw await this.errorFor(o, status, res.body, ep, h);
    }
  }

  /**
   * One request and the redirects it leads to (at most MAX_REDIRECTS). The
   * Authorization header goes only to the registry's own origin; a hop to
   * another origin is made with that host's own TLS settings (its certs.d
   * and whether it is listed insecure), never the registry's; a hop to plain
   * HTTP is refused unless the request it redirects was plain HTTP already
   * or the new host may use HTTP. Only GET and HEAD follow 301/302/303; any
   * method follows 307/308 with its body made again. Returns the last
   * answer and the URL it came from.
   */
  private async exchange(
    dispatcher: Dispatcher,
    origin: string | undefined,
    r: { method: HttpMethod; url: string; headers: Record<string, string>; authorization?: string | undefined; body?: (() => RequestBody) | undefined; what: string },
  ): Promise<{ res: Dispatcher.ResponseData; url: string }> {
    let url = r.url;
    for (let hop = 0; ; hop++) {
      const own = sameOrigin(url, origin ?? new URL(r.url).origin);
      const headers = { ...r.headers };
      // never send our credentials to a host that is not this registry
      if (r.authorization && own) headers.authorization = r.authorization;
      const via = own ? dispatcher : await this.redirectDispatcher(url);
      const res = await request(url, { method: r.method, headers, body: toBody(r.body?.()), dispatcher: via, ...(this.opts.signal ? { signal: this.opts.signal } : {}) });
      this.trace(r.method, url, res.statusCode);
      const follows = REDIRECTS.has(res.statusCode) && (res.statusCode === 307 || res.statusCode === 308 || r.method === 'GET' || r.method === 'HEAD');
      const location = res.headers.location;
      if (!follows || typeof location !== 'string') return { res, url };
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) throw new KilnError('REGISTRY', `${r.what}: more than ${MAX_REDIRECTS} redirects (last to ${redactUrl(url)})`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new KilnError('REGISTRY', `${r.what}: the registry redirected to an invalid URL`);
      }
      if (next.protocol !== 'https:' && next.protocol !== 'http:') throw new KilnError('REGISTRY', `${r.what}: the registry redirected to a ${next.protocol} URL; only http and https are followed`);
      if (next.protocol === 'http:' && url.startsWith('https:') && !this.mayUseHttp(next.host)) {
        throw new KilnError('REGISTRY', `${r.what}: the registry redirected from HTTPS to plain HTTP (${next.origin}); refused, since a redirect must not drop TLS`, { hint: `if ${next.host} is meant to be reached over HTTP, list it with --insecure-registry ${next.host}` });
      }
      url = next.href;
    }
  }

  /** A host's transport with the client's settings: its certificates, pool size and HTTP/2 choice. */
  private newTransport(host: string, insecure: boolean, scheme: 'http' | 'https' | undefined): Transport {
    return new Transport(host, {
      insecure,
      certsDirs: this.opts.certsDirs ?? DEFAULT_CERTS_DIRS,
      connections: this.opts.connectionsPerHost ?? 16,
      allowH2: this.opts.http2 ?? false,
      ...(scheme ? { scheme } : {}),
    });
  }

  /** The dispatcher for a host a redirect leads to: its own transport (certificates, insecure or not). */
  private redirectDispatcher(url: string): Promise<Dispatcher> {
    const u = new URL(url);
    const key = `${u.protocol}//${u.host}`;
    let t = this.redirectTransports.get(key);
    if (!t) {
      t = this.newTransport(u.host, this.listedInsecure(u.host), u.protocol === 'http:' ? 'http' : 'https');
      this.redirectTransports.set(key, t);
      // a registry redirecting each request to another port must not make kiln keep a pool for each
      if (this.redirectTransports.size > MAX_REDIRECT_HOSTS) {
        const [oldest, pool] = this.redirectTransports.entries().next().value as [string, Transport];
        this.redirectTransports.delete(oldest);
        // close() lets requests still running on it finish
        void pool.close().catch(() => undefined);
      }
    }
    return t.dispatcher();
  }

  private checkAborted(what: string): void {
    if (this.opts.signal?.aborted) throw new KilnError('CANCELLED', `${what}: cancelled`);
  }

  private mayRetry(attempt: number, started: number): boolean {
    return attempt < this.retry.maxAttempts && Date.now() - started < this.retry.maxTotalMs;
  }

  private async errorFor(o: SendOptions, status: number, body: Dispatcher.ResponseData['body'] | undefined, ep: Endpoint, h: Host): Promise<KilnError> {
    let detail = '';
    let ociCode: string | undefined;
    if (body) {
      const text = await readBody(body, { limit: ERROR_BODY_LIMIT, what: o.what, truncate: true }).then((b) => b.toString('utf8')).catch(() => '');
      detail = ociErrorText(text);
      ociCode = ociErrorCode(text);
    }
    const code = status === 401 || status === 403 ? 'REGISTRY_AUTH' : status === 404 ? 'NOT_FOUND' : 'REGISTRY';
    const details = { status, ...(ociCode !== undefined ? { ociCode } : {}) };
    if (status === 401) {
      const creds = await h.auth.credentials();
      const why = creds ? 'the registry refused the credentials' : `authentication required (run kiln login ${ep.credentialKey})`;
      return new RegistryError(code, `${o.what}: ${why}${detail ? `: ${detail}` : ''}`, details);
    }
    return new RegistryError(code, `${o.what}: registry ${ep.host} answered ${status}${detail ? ` ${detail}` : ''}`, details);
  }

  private baseHeaders(): Record<string, string> {
    return { 'user-agent': this.opts.userAgent ?? 'kiln' };
  }

  private trace(method: string, url: string, outcome: number | string): void {
    this.opts.debug?.(`${method} ${redactUrl(url)} → ${outcome}`);
  }

  async close(): Promise<void> {
    await Promise.allSettled([...[...this.hosts.values()].map((h) => h.transport), ...this.redirectTransports.values()].map((t) => t.close()));
    await this.shared.close();
  }
}

/** Upload URLs carry session state in the query; errors and traces show the path only. */
export function redactUrl(u: string): string {
  try {
    const p = new URL(u);
    return `${p.origin}${p.pathname}`;
  } catch {
    return u.split('?')[0] ?? u;
  }
}

/** Redirect targets whose connection pools are kept (a registry uses one or two CDNs). */
const MAX_REDIRECT_HOSTS = 8;

/** Statuses whose Location is followed. */
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** As many hops as Go's and undici's clients allow a registry (and its CDN) by default, fewer than both: blob CDNs use one or two. */
const MAX_REDIRECTS = 5;

function sameOrigin(url: string, origin: string | undefined): boolean {
  try {
    return origin !== undefined && new URL(url).origin === new URL(origin).origin;
  } catch {
    return false;
  }
}

function hostOnly(hostport: string): string {
  const i = hostport.lastIndexOf(':');
  return i > 0 && !hostport.endsWith(']') ? hostport.slice(0, i) : hostport;
}

export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    const cause = (e as { cause?: unknown }).cause;
    const causeMsg = cause instanceof Error && cause.message !== e.message ? ` (${cause.message})` : '';
    return `${typeof code === 'string' && !e.message.includes(code) ? `${code}: ` : ''}${e.message}${causeMsg}`;
  }
  return String(e);
}

/** `{"errors":[{"code":"MANIFEST_UNKNOWN","message":"…"}]}` → `MANIFEST_UNKNOWN: …` (one line, bounded). */
/** The first `code` of an OCI error body (`{"errors":[{"code":"MANIFEST_UNKNOWN",…}]}`), when it is a plain upper-case name. */
export function ociErrorCode(text: string): string | undefined {
  try {
    const o = JSON.parse(text) as { errors?: Array<{ code?: unknown }> };
    const c = Array.isArray(o.errors) ? o.errors[0]?.code : undefined;
    return typeof c === 'string' && /^[A-Z][A-Z0-9_]{0,63}$/.test(c) ? c : undefined;
  } catch {
    return undefined;
  }
}

export function ociErrorText(text: string): string {
  try {
    const o = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    if (Array.isArray(o.errors) && o.errors.length) {
      return o.errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ').slice(0, 300);
    }
  } catch {
    // not JSON: fall through
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}

/**
 * undici sends async iterables as they are (its typings only list Readable);
 * passing them through saves a stream layer per uploaded byte.
 */
function toBody(b: RequestBody | undefined): string | Buffer | Uint8Array | Readable | null {
  if (b === undefined || b === null) return null;
  if (typeof b === 'string' || b instanceof Uint8Array || b instanceof Readable) return b;
  return b as unknown as Readable;
}
