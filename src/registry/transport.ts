import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { isLoopbackHost } from './reference.js';

export const DEFAULT_CERTS_DIRS = ['/etc/docker/certs.d', '/etc/containers/certs.d'];

/**
 * A response's headers must all be there this long after the request was
 * sent: generous, since a registry may verify a big upload before it answers
 * the PUT that completes it.
 */
const HEADERS_TIMEOUT_MS = 120_000;
/** A body that sends nothing for this long is dropped; a body that trickles is bounded by body.ts. */
const BODY_IDLE_TIMEOUT_MS = 300_000;

export interface TransportOptions {
  /** HTTP or unverified TLS allowed (the host is listed as insecure, or is loopback). */
  insecure: boolean;
  /** Directories holding `<host[:port]>/{ca.crt,*.crt,*.cert,*.key}`. */
  certsDirs: string[];
  /** Connections per origin. */
  connections: number;
  allowH2: boolean;
  /** When set, skip probing: the scheme is known (a mirror URL said so). */
  scheme?: 'http' | 'https';
}

interface TlsFiles {
  ca?: string[];
  cert?: string;
  key?: string;
}

/**
 * The connection side of one registry host: its scheme (HTTPS unless the
 * host may use HTTP and HTTPS does not answer), custom CAs and client
 * certificates, and a keep-alive undici Agent. Redirects are not followed
 * here but by RegistryHttp, which knows where each hop goes: credentials and
 * challenges belong to the registry's own origin only.
 */
export class Transport {
  readonly host: string;
  readonly opts: TransportOptions;
  private dispatcherPromise: Promise<Dispatcher> | undefined;
  private agent: Agent | undefined;
  private scheme: 'http' | 'https' | undefined;

  constructor(host: string, opts: TransportOptions) {
    this.host = host;
    this.opts = opts;
    this.scheme = opts.scheme;
  }

  /** Loopback hosts get the same latitude Docker gives them. */
  get mayUseHttp(): boolean {
    return this.opts.insecure || isLoopbackHost(this.host) || this.opts.scheme === 'http';
  }

  dispatcher(): Promise<Dispatcher> {
    this.dispatcherPromise ??= this.makeDispatcher();
    return this.dispatcherPromise;
  }

  /** `scheme://host`, once known. */
  get origin(): string | undefined {
    return this.scheme ? `${this.scheme}://${this.host}` : undefined;
  }

  /** Candidate origins in the order to try them. */
  candidateOrigins(): string[] {
    if (this.scheme) return [`${this.scheme}://${this.host}`];
    return this.mayUseHttp ? [`https://${this.host}`, `http://${this.host}`] : [`https://${this.host}`];
  }

  setScheme(origin: string): void {
    this.scheme = origin.startsWith('http://') ? 'http' : 'https';
  }

  async close(): Promise<void> {
    await this.agent?.close();
  }

  private async makeDispatcher(): Promise<Dispatcher> {
    const tls = await loadTlsFiles(this.host, this.opts.certsDirs);
    const connect: Record<string, unknown> = {};
    if (tls.ca) connect.ca = tls.ca;
    if (tls.cert && tls.key) {
      connect.cert = tls.cert;
      connect.key = tls.key;
    }
    if (this.opts.insecure) connect.rejectUnauthorized = false;
    this.agent = new Agent({
      connections: this.opts.connections,
      allowH2: this.opts.allowH2,
      keepAliveTimeout: 30_000,
      headersTimeout: HEADERS_TIMEOUT_MS,
      bodyTimeout: BODY_IDLE_TIMEOUT_MS,
      connect,
    });
    return this.agent;
  }
}

/** Docker's certs.d layout: `*.crt` are CAs, `*.cert` + `*.key` a client pair. */
export async function loadTlsFiles(host: string, dirs: string[]): Promise<TlsFiles> {
  const out: TlsFiles = {};
  // A registry's redirect can name the host "." or ".." (the URL parser takes https://../), which as
  // a directory name would read the files of certs.d itself or of its parent.
  if (host === '.' || host === '..' || host.includes('/')) return out;
  for (const base of dirs) {
    const dir = join(base, host);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const n of names.sort()) {
      const p = join(dir, n);
      if (n.endsWith('.crt')) (out.ca ??= []).push(await readFile(p, 'utf8'));
      else if (n.endsWith('.cert')) {
        const key = names.find((k) => k === `${n.slice(0, -'.cert'.length)}.key`);
        if (key && !out.cert) {
          out.cert = await readFile(p, 'utf8');
          out.key = await readFile(join(dir, key), 'utf8');
        }
      }
    }
  }
  if (out.ca) {
    // extra CAs add to the system roots rather than replace them
    const { rootCertificates } = await import('node:tls');
    out.ca = [...rootCertificates, ...out.ca];
  }
  return out;
}
