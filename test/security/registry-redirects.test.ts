import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { RateWatch, readBody } from '../../src/registry/body.js';
import { isRetryableError } from '../../src/registry/retry.js';
import { parseReference, pull, push, RegistryClient, staticCredentialSource } from '../../src/registry/index.js';
import { FaultProxy } from '../registry/helpers/fault-proxy.js';
import { makeRandomImage, tempStore, uniqueRepo } from '../registry/helpers/images.js';
import { rejection } from '../registry/helpers/rejection.js';

/**
 * A registry is hostile until proven otherwise: where it redirects, what the
 * host it redirects to asks for, and how slowly it answers. Credentials
 * belong to the registry's own origin; a challenge from anywhere else is not
 * answered; TLS is never dropped on the way; a trickling answer is bounded.
 */
const reg = inject('registry');
const run = promisify(execFile);

/** A server on loopback that records every request and answers with `answer`. */
async function listen(answer: (url: string, res: import('node:http').ServerResponse) => void): Promise<{ server: Server; addr: string; seen: Array<{ url: string; authorization: string | undefined }> }> {
  const seen: Array<{ url: string; authorization: string | undefined }> = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '', authorization: req.headers.authorization });
    answer(req.url ?? '', res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function close(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

describe('a hostile registry: redirects, challenges and slow answers', () => {
  let s: Awaited<ReturnType<typeof tempStore>>;
  let repo: string;
  beforeAll(async () => {
    s = await tempStore();
    repo = uniqueRepo();
    await makeRandomImage(s.store, parseReference(`${reg.basic}/${repo}:1`).toString(), [3000]);
    await push(s.store, `${reg.basic}/${repo}:1`, undefined, { credentials: staticCredentialSource({ [reg.basic]: { username: reg.user, password: reg.password } }) });
  });
  afterAll(async () => {
    await s.dispose();
  });

  it('a host the registry redirects to cannot obtain the credentials by answering 401 with its own token realm', async () => {
    // the "token server" of the host redirected to: it must never be asked anything
    const evil = await listen((_u, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"x"}'));
    const cdn = await listen((_u, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${evil.addr}/token",service="evil"` }).end();
    });
    const front = await FaultProxy.start(reg.basic);
    try {
      front.on('GET', /\/blobs\/sha256:/, (ctx) => {
        ctx.res.writeHead(307, { location: `http://${cdn.addr}${ctx.req.url}` }).end();
      }, 10);
      const d = await tempStore();
      try {
        const e = await rejection(pull(d.store, `${front.addr}/${repo}:1`, { credentials: staticCredentialSource({ [front.addr]: { username: reg.user, password: reg.password } }), retry: { maxAttempts: 1 } }));
        expect(e.code).toBe('REGISTRY_AUTH');
        expect(e.message).toContain(`redirected to http://${cdn.addr}, which asked for credentials`);
      } finally {
        await d.dispose();
      }
      expect(cdn.seen.length).toBeGreaterThan(0);
      expect(cdn.seen.every((r) => r.authorization === undefined)).toBe(true);
      expect(evil.seen).toEqual([]);
      // the registry itself did get them: they were in use
      expect(front.seen.some((r) => r.headers.authorization?.startsWith('Basic '))).toBe(true);
    } finally {
      await front.close();
      await close(cdn.server);
      await close(evil.server);
    }
  });

  it('a challenge from where the ping was redirected is not the registry\'s: the pull authenticates with the registry\'s own', async () => {
    const evil = await listen((_u, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"x"}'));
    const elsewhere = await listen((_u, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${evil.addr}/token",service="evil"` }).end();
    });
    const front = await FaultProxy.start(reg.basic);
    try {
      front.on('GET', /^\/v2\/$/, (ctx) => {
        ctx.res.writeHead(302, { location: `http://${elsewhere.addr}/v2/` }).end();
      }, 10);
      const d = await tempStore();
      try {
        const r = await pull(d.store, `${front.addr}/${repo}:1`, { credentials: staticCredentialSource({ [front.addr]: { username: reg.user, password: reg.password } }) });
        expect(await d.store.hasBlob(r.manifestDigest)).toBe(true);
      } finally {
        await d.dispose();
      }
      expect(elsewhere.seen.length).toBeGreaterThan(0);
      expect(elsewhere.seen.every((r) => r.authorization === undefined)).toBe(true);
      expect(evil.seen).toEqual([]);
    } finally {
      await front.close();
      await close(elsewhere.server);
      await close(evil.server);
    }
  });

  it('credentials are never sent to a plain-HTTP token realm on a host that may not use HTTP (refused before any connection)', async () => {
    const front = await FaultProxy.start(reg.basic);
    try {
      // kiln-test.invalid cannot resolve: a connection attempt would fail differently, and none leaves the machine
      front.on('GET', /\/manifests\//, (ctx) => {
        ctx.res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://kiln-test.invalid/token",service="x"' }).end();
      }, 10);
      const d = await tempStore();
      try {
        const e = await rejection(pull(d.store, `${front.addr}/${repo}:1`, { credentials: staticCredentialSource({ [front.addr]: { username: reg.user, password: reg.password } }), retry: { maxAttempts: 1 } }));
        expect(e.code).toBe('REGISTRY_AUTH');
        expect(e.message).toContain('the token server http://kiln-test.invalid is plain HTTP; kiln does not send credentials over it');
      } finally {
        await d.dispose();
      }
    } finally {
      await front.close();
    }
  });

  it('a token server cannot redirect a POST carrying a refresh token elsewhere: the body is never sent on', async () => {
    const elsewhere = await listen((_u, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"x"}'));
    const bodies: string[] = [];
    const realm = createServer((req, res) => {
      let b = '';
      req.on('data', (c: Buffer) => (b += c.toString()));
      req.on('end', () => {
        bodies.push(b);
        res.writeHead(307, { location: `http://${elsewhere.addr}/steal` }).end();
      });
    });
    await new Promise<void>((r) => realm.listen(0, '127.0.0.1', r));
    const realmAddr = `127.0.0.1:${(realm.address() as AddressInfo).port}`;
    const front = await FaultProxy.start(reg.basic);
    try {
      front.on('GET', /\/manifests\//, (ctx) => {
        ctx.res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${realmAddr}/token",service="x"` }).end();
      }, 10);
      const d = await tempStore();
      try {
        const e = await rejection(pull(d.store, `${front.addr}/${repo}:1`, { credentials: staticCredentialSource({ [front.addr]: { identityToken: 'SECRET-REFRESH-TOKEN' } }), retry: { maxAttempts: 1 } }));
        expect(e.code).toBe('REGISTRY_AUTH');
        expect(e.message).toContain('token server answered 307');
      } finally {
        await d.dispose();
      }
      expect(bodies.some((b) => b.includes('SECRET-REFRESH-TOKEN'))).toBe(true);
      expect(elsewhere.seen).toEqual([]);
    } finally {
      await front.close();
      await close(realm);
      await close(elsewhere.server);
    }
  });

  it('a redirect to a scheme other than http and https is refused, and so is a chain of more than 5', async () => {
    const front = await FaultProxy.start(reg.basic);
    const creds = staticCredentialSource({ [front.addr]: { username: reg.user, password: reg.password } });
    try {
      front.on('GET', /\/manifests\//, (ctx) => {
        ctx.res.writeHead(302, { location: 'file:///etc/passwd' }).end();
      }, 1);
      const d = await tempStore();
      try {
        const e = await rejection(pull(d.store, `${front.addr}/${repo}:1`, { credentials: creds, retry: { maxAttempts: 1 } }));
        expect(e.message).toContain('redirected to a file: URL; only http and https are followed');
        front.clear();
        let hops = 0;
        front.on('GET', /\/manifests\//, (ctx) => {
          hops++;
          ctx.res.writeHead(302, { location: `/v2/${repo}/manifests/loop${hops}` }).end();
        }, 100);
        const loop = await rejection(pull(d.store, `${front.addr}/${repo}:1`, { credentials: creds, retry: { maxAttempts: 1 } }));
        expect(loop.message).toMatch(/more than 5 redirects/);
        expect(hops).toBe(6);
      } finally {
        await d.dispose();
      }
    } finally {
      await front.close();
    }
  });

  it('a redirect may not drop TLS: HTTPS to plain HTTP on a host that may not use HTTP is refused before any connection', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kiln-downgrade-'));
    try {
      await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir });
      const seen: string[] = [];
      // an HTTPS "registry" whose manifests are "somewhere else", over plain HTTP
      const server = createHttpsServer({ key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) }, (req, res) => {
        seen.push(req.url ?? '');
        if (req.url === '/v2/') res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        else res.writeHead(302, { location: 'http://kiln-test.invalid/manifest' }).end();
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const d = await tempStore();
      try {
        // insecure: the test certificate is not verified; HTTPS is still what is spoken
        const e = await rejection(pull(d.store, `${addr}/${repo}:1`, { insecureRegistries: [addr], credentials: staticCredentialSource({}), retry: { maxAttempts: 1 } }));
        expect(e.code).toBe('REGISTRY');
        expect(e.message).toContain('redirected from HTTPS to plain HTTP (http://kiln-test.invalid); refused');
        expect(seen).toContain(`/v2/${repo}/manifests/1`);
      } finally {
        await d.dispose();
        await close(server);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('slow answers are bounded', () => {
  /** Sends headers at once, then one byte every `everyMs`, until the client goes away. */
  async function trickle(everyMs: number): Promise<{ server: Server; url: string }> {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const t = setInterval(() => res.write(' '), everyMs);
      res.on('close', () => clearInterval(t));
      // stops by itself whatever the client does
      setTimeout(() => res.destroy(), 20_000).unref();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
  }

  it('a document that trickles in is dropped at its deadline, with what came', async () => {
    const t = await trickle(50);
    try {
      const res = await request(t.url);
      await expect(readBody(res.body, { limit: 1024 * 1024, what: 'manifest x', deadlineMs: 600 })).rejects.toThrow(/manifest x: the registry did not send the whole answer within 0.6 s \(\d+ bytes came\)/);
    } finally {
      await close(t.server);
    }
  });

  it('an error text that trickles in is cut at its deadline and returned', async () => {
    const t = await trickle(50);
    try {
      const res = await request(t.url);
      const text = await readBody(res.body, { limit: 1024, what: 'error', truncate: true, deadlineMs: 400 });
      expect(text.length).toBeGreaterThan(0);
      expect(text.toString().trim()).toBe('');
    } finally {
      await close(t.server);
    }
  });

  it('a blob body that brings too little in a window is dropped as a lost connection, but not while the consumer holds a chunk', async () => {
    const t = await trickle(50);
    try {
      // paused: the consumer's time does not count, nothing is dropped
      const held = await request(t.url);
      let got = 0;
      const w1 = new RateWatch(held.body, () => got, 'blob held', { windowMs: 200, minBytes: 1024 });
      w1.pause();
      await new Promise((r) => setTimeout(r, 700));
      expect(held.body.destroyed).toBe(false);
      w1.stop();
      held.body.destroy();

      const res = await request(t.url);
      got = 0;
      const w2 = new RateWatch(res.body, () => got, 'blob b', { windowMs: 300, minBytes: 1024 });
      const err = await (async () => {
        try {
          for await (const c of res.body) got += (c as Buffer).length;
        } catch (e) {
          return e;
        } finally {
          w2.stop();
        }
        return undefined;
      })();
      expect(String(err)).toMatch(/blob b: fewer than 1024 bytes came in 0.3 s/);
      // resumed like a dropped connection, within the retry policy's attempts
      expect(isRetryableError(err)).toBe(true);
      expect(got).toBeGreaterThan(0);
    } finally {
      await close(t.server);
    }
  });
});

describe('a tag list that pages without end', () => {
  it('is read up to 64 MiB in all, then refused', async () => {
    // about 3.5 MB a page, each page pointing at the next: without a total bound this never ends
    const page = Buffer.from(JSON.stringify({ name: 'x', tags: Array.from({ length: 50_000 }, (_, i) => `t${String(i).padStart(64, '0')}`) }));
    let pages = 0;
    const srv = await listen((url, res) => {
      if (url === '/v2/') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      pages++;
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': page.length, link: `</v2/x/tags/list?last=${pages}>; rel="next"` }).end(page);
    });
    const client = new RegistryClient({ credentials: staticCredentialSource({}) });
    try {
      const e = await rejection(client.listTags(parseReference(`${srv.addr}/x`)));
      expect(e.message).toBe(`tags of ${srv.addr}/x: the tag list passes 64 MiB, kiln's limit`);
      expect(pages).toBe(Math.floor((64 * 1024 * 1024) / page.length) + 1);
    } finally {
      await client.http.close();
      await close(srv.server);
    }
  });
});
