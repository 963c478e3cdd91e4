import { createServer, request, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as the proxy saw it (for assertions on what the client sent). */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  bodyLength: number;
}

export interface Upstream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface FaultContext {
  req: IncomingMessage;
  res: ServerResponse;
  body: Buffer;
  /** Sends the request (possibly changed) to the real registry and returns its whole answer. */
  forward(change?: { method?: string; url?: string; headers?: IncomingHttpHeaders; body?: Buffer }): Promise<Upstream>;
  /** Writes an upstream answer back unchanged. */
  reply(u: Upstream): void;
}

export type FaultHandler = (ctx: FaultContext) => Promise<void> | void;

interface Rule {
  match: (method: string, url: string) => boolean;
  handler: FaultHandler;
  remaining: number;
}

/**
 * A real HTTP proxy on 127.0.0.1 in front of a real registry. Rules
 * intercept matching requests a bounded number of times (connection resets,
 * injected statuses, altered bodies); everything else is forwarded as is.
 * Bodies are buffered: test blobs are small.
 */
export class FaultProxy {
  readonly seen: SeenRequest[] = [];
  private readonly rules: Rule[] = [];
  private server: Server | undefined;
  addr = '';

  constructor(readonly upstream: string) {}

  static async start(upstream: string): Promise<FaultProxy> {
    const p = new FaultProxy(upstream);
    await p.listen();
    return p;
  }

  /** Intercepts the next `times` requests matching `method` and the `path` pattern. */
  on(method: string, path: RegExp, handler: FaultHandler, times = 1): this {
    this.rules.push({ match: (m, u) => (method === '*' || m === method) && path.test(u), handler, remaining: times });
    return this;
  }

  clear(): void {
    this.rules.length = 0;
    this.seen.length = 0;
  }

  /** Rules that never fired (a test whose fault was not exercised is not testing anything). */
  pending(): number {
    return this.rules.filter((r) => r.remaining > 0).length;
  }

  private async listen(): Promise<void> {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((e: unknown) => {
        if (!res.headersSent) {
          res.statusCode = 502;
          res.end(String(e));
        } else {
          res.destroy();
        }
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.addr = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    this.seen.push({ method, url, headers: { ...req.headers }, bodyLength: body.length });

    const ctx: FaultContext = {
      req,
      res,
      body,
      forward: (change = {}) => this.forward(change.method ?? method, change.url ?? url, change.headers ?? req.headers, change.body ?? body),
      reply: (u) => {
        const h = rewriteLocation(u.headers, this.upstream, this.addr);
        // a handler may have changed the body; HEAD answers keep the registry's length
        if (method !== 'HEAD') h['content-length'] = String(u.body.length);
        res.writeHead(u.status, h);
        res.end(u.body);
      },
    };
    const rule = this.rules.find((r) => r.remaining > 0 && r.match(method, url));
    if (rule) {
      rule.remaining--;
      await rule.handler(ctx);
      return;
    }
    ctx.reply(await ctx.forward());
  }

  private forward(method: string, url: string, headers: IncomingHttpHeaders, body: Buffer): Promise<Upstream> {
    const [host, port] = this.upstream.split(':');
    const h: IncomingHttpHeaders = { ...headers, host: headers.host ?? this.upstream };
    if (body.length || method === 'PUT' || method === 'PATCH' || method === 'POST') h['content-length'] = String(body.length);
    delete h['transfer-encoding'];
    delete h.connection;
    return new Promise((resolve, reject) => {
      const up = request({ host, port: Number(port), method, path: url, headers: h }, (r) => {
        const out: Buffer[] = [];
        r.on('data', (c: Buffer) => out.push(c));
        r.on('end', () => resolve({ status: r.statusCode ?? 502, headers: r.headers, body: Buffer.concat(out) }));
        r.on('error', reject);
      });
      up.on('error', reject);
      up.end(body);
    });
  }

  async close(): Promise<void> {
    if (!this.server) return;
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

/** Absolute Locations name the registry; point them back at the proxy so the client stays behind it. */
function rewriteLocation(headers: IncomingHttpHeaders, upstream: string, self: string): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = v;
  delete out.connection;
  delete out['transfer-encoding'];
  if (typeof out.location === 'string') out.location = out.location.replace(`//${upstream}`, `//${self}`);
  return out;
}

/** Sends the headers and the first `bytes` of the body, then resets the connection. */
export function resetAfter(ctx: FaultContext, u: Upstream, bytes: number): void {
  ctx.res.writeHead(u.status, { ...rewriteLocation(u.headers, '', ''), 'content-length': String(u.body.length) });
  ctx.res.write(u.body.subarray(0, bytes), () => {
    setImmediate(() => ctx.req.socket.resetAndDestroy());
  });
}

/** Sends the headers (full Content-Length) and the first `bytes`, then closes cleanly: a truncated body. */
export function truncateAfter(ctx: FaultContext, u: Upstream, bytes: number): void {
  ctx.res.writeHead(u.status, { ...rewriteLocation(u.headers, '', ''), 'content-length': String(u.body.length) });
  ctx.res.write(u.body.subarray(0, bytes), () => {
    setImmediate(() => ctx.req.socket.end());
  });
}
