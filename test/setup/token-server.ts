import { createHash, createPrivateKey, createPublicKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A Docker token-spec token server for the `auth.token` registry: GET (Basic
 * auth or anonymous) and OAuth2 POST (password / refresh_token grants). Tokens
 * are real RS256 JWTs whose `kid` is the libtrust key id of the signing key,
 * which is how Distribution 2.8 finds the key in its `rootcertbundle`.
 *
 * Anonymous callers get `pull` on repositories under `public/` only, so tests
 * can see both the anonymous token flow and a refusal.
 */
export interface TokenServerOptions {
  keyPem: string;
  issuer: string;
  service: string;
  user: string;
  password: string;
  /** Lifetime of access tokens, seconds. */
  expiresIn?: number;
}

export interface TokenServer {
  url: string;
  close(): Promise<void>;
}

interface Access {
  type: string;
  name: string;
  actions: string[];
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const key = createPrivateKey(opts.keyPem);
  const kid = libtrustKeyId(createPublicKey(key));
  const refreshTokens = new Map<string, string>();
  const stats = { get: 0, post: 0 };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      res.statusCode = 500;
      res.end(String(e));
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/stats') return json(res, 200, stats);
    if (url.pathname !== '/token') return json(res, 404, { error: 'not found' });

    let account: string | undefined;
    let params = url.searchParams;
    let wantRefresh = params.get('offline_token') === 'true';
    if (req.method === 'POST') {
      stats.post++;
      params = new URLSearchParams(await readBody(req));
      const grant = params.get('grant_type');
      if (grant === 'password') {
        if (params.get('username') !== opts.user || params.get('password') !== opts.password) return json(res, 401, { error: 'invalid_grant' });
        account = opts.user;
      } else if (grant === 'refresh_token') {
        account = refreshTokens.get(params.get('refresh_token') ?? '');
        if (!account) return json(res, 401, { error: 'invalid_grant' });
      } else {
        return json(res, 400, { error: 'unsupported_grant_type' });
      }
      wantRefresh = params.get('access_type') === 'offline' || grant === 'password';
    } else {
      stats.get++;
      const auth = req.headers.authorization;
      if (auth) {
        const m = /^Basic\s+(.+)$/i.exec(auth);
        const decoded = m ? Buffer.from(m[1]!, 'base64').toString('utf8') : '';
        if (decoded !== `${opts.user}:${opts.password}`) {
          res.setHeader('WWW-Authenticate', 'Basic realm="kiln-token"');
          return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] });
        }
        account = opts.user;
      }
    }
    if (params.get('service') !== opts.service) return json(res, 400, { error: 'unknown service' });

    const access = params.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean).map(parseScope).filter((a): a is Access => a !== undefined)
      .map((a) => grant(a, account))
      .filter((a) => a.actions.length > 0);

    const expiresIn = opts.expiresIn ?? 300;
    const now = Math.floor(Date.now() / 1000);
    const token = jwt(key, kid, {
      iss: opts.issuer,
      sub: account ?? '',
      aud: opts.service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(8).toString('hex'),
      access,
    });
    const body: Record<string, unknown> = { token, access_token: token, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() };
    if (account && wantRefresh) {
      const rt = randomBytes(16).toString('hex');
      refreshTokens.set(rt, account);
      body.refresh_token = rt;
    }
    json(res, 200, body);
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function grant(a: Access, account: string | undefined): Access {
  if (account) return a;
  return { ...a, actions: a.name.startsWith('public/') ? a.actions.filter((x) => x === 'pull') : [] };
}

function parseScope(s: string): Access | undefined {
  // repository:name:actions — the name may contain a port-free path; actions are the part after the last colon
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first < 0 || last === first) return undefined;
  return { type: s.slice(0, first), name: s.slice(first + 1, last), actions: s.slice(last + 1).split(',').filter(Boolean) };
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

function jwt(key: KeyObject, kid: string, claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid }));
  const body = b64url(JSON.stringify(claims));
  const sig = sign('sha256', Buffer.from(`${head}.${body}`), key);
  return `${head}.${body}.${b64url(sig)}`;
}

/** libtrust's key id: base32 of the first 240 bits of sha256(SPKI DER), in 4-char groups joined by ':'. */
export function libtrustKeyId(pub: KeyObject): string {
  const der = pub.export({ type: 'spki', format: 'der' });
  const s = base32(createHash('sha256').update(der).digest().subarray(0, 30));
  return s.match(/.{1,4}/g)!.join(':');
}

function base32(b: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of b) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json');
  res.end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
