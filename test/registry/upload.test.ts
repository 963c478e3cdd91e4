import { describe, expect, inject, it } from 'vitest';
import { parseReference, pull, push, RegistryClient, storeSource, staticCredentialSource, type RegistryEvent } from '../../src/registry/index.js';
import { FaultProxy } from './helpers/fault-proxy.js';
import { makeRandomImage, tempStore, uniqueRepo } from './helpers/images.js';
import { useProxiedStore } from './helpers/proxied-store.js';

const reg = inject('registry');
const fast = { retry: { baseDelayMs: 10, maxDelayMs: 1500, maxAttempts: 4 } };
const CHUNK = 64 * 1024;

describe('blob uploads (distribution-spec push rules)', () => {
  const s = useProxiedStore(reg.anon, { settleEachTest: true });

  async function roundTrip(ref: string, layer: Buffer): Promise<void> {
    const d = await tempStore();
    try {
      const r = await pull(d.store, ref, fast);
      const layerDigest = r.image!.manifest.layers[0]!.digest;
      expect((await d.store.readBlob(layerDigest)).equals(layer)).toBe(true);
    } finally {
      await d.dispose();
    }
  }

  it('chunked upload: PATCH with Content-Range start-end (no bytes=), latest Location each time', async () => {
    const ref = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, ref, [5 * CHUNK + 123]);
    await push(s.store, ref, undefined, { ...fast, chunkSize: CHUNK });
    const patches = s.proxy.seen.filter((r) => r.method === 'PATCH');
    expect(patches.length).toBe(6);
    expect(patches.map((p) => p.headers['content-range'])).toEqual([0, 1, 2, 3, 4, 5].map((i) => `${i * CHUNK}-${Math.min((i + 1) * CHUNK, 5 * CHUNK + 123) - 1}`));
    const put = s.proxy.seen.find((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/') && r.bodyLength === 0);
    // the registry's own query (_state) is kept and digest= added
    expect(put?.url).toMatch(/_state=.*digest=sha256%3A|digest=sha256%3A.*_state=/);
    await roundTrip(ref, img.layers[0]!);
  });

  it('without a chunk size: one PUT up to 64 MiB; a larger blob in one PATCH of all of it, in 64 MiB chunks once that fails', async () => {
    const MIB64 = 64 * 1024 * 1024;
    const small = `${s.proxy.addr}/${uniqueRepo()}:1`;
    await makeRandomImage(s.store, small, [MIB64]);
    await push(s.store, small, undefined, fast);
    expect(s.proxy.seen.filter((r) => r.method === 'PATCH')).toEqual([]);
    expect(s.proxy.seen.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/')).map((r) => r.bodyLength).sort((a, b) => a - b).at(-1)).toBe(MIB64);

    const ref = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const size = MIB64 + 4097;
    const img = await makeRandomImage(s.store, ref, [size]);
    // the whole blob in one PATCH; it dies before the registry sees it: the session's status says 0,
    // and the blob goes again in 64 MiB chunks, as a push did before the whole-blob default
    s.proxy.on('PATCH', /\/blobs\/uploads\//, (ctx) => { ctx.req.socket.resetAndDestroy(); });
    const seenBefore = s.proxy.seen.length;
    const events: RegistryEvent[] = [];
    await push(s.store, ref, undefined, { ...fast, onEvent: (e) => events.push(e) });
    const seen = s.proxy.seen.slice(seenBefore);
    const patches = seen.filter((r) => r.method === 'PATCH');
    expect(patches.map((p) => p.headers['content-range'])).toEqual([`0-${size - 1}`, `0-${MIB64 - 1}`, `${MIB64}-${size - 1}`]);
    expect(patches.slice(1).map((p) => p.bodyLength)).toEqual([MIB64, 4097]);
    expect(events.some((e) => e.type === 'warning' && /one request with the whole blob failed.*64 MiB chunks/.test(e.message))).toBe(true);
    expect(seen.filter((r) => r.method === 'GET' && r.url.includes('/blobs/uploads/')).length).toBe(1);
    // then the finalising PUT, empty
    expect(seen.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/') && r.url.includes('digest=')).map((r) => r.bodyLength)).toContain(0);
    await roundTrip(ref, img.layers[0]!);
  }, 60_000);

  it('a registry or proxy that refuses the whole-blob PATCH as too large (413) gets 64 MiB chunks, not a failed push', async () => {
    const MIB64 = 64 * 1024 * 1024;
    const ref = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const size = MIB64 + 512;
    const img = await makeRandomImage(s.store, ref, [size]);
    let refused = 0;
    s.proxy.on('PATCH', /\/blobs\/uploads\//, (ctx) => {
      refused++;
      ctx.res.writeHead(413, { 'content-type': 'text/html' });
      ctx.res.end('<html>413 Request Entity Too Large</html>');
    });
    // every request allowed one attempt: the 413 must not count as one of them
    await push(s.store, ref, undefined, { retry: { ...fast.retry, maxAttempts: 1 } });
    expect(refused).toBe(1);
    expect(s.proxy.seen.filter((r) => r.method === 'PATCH').map((p) => p.headers['content-range'])).toEqual([`0-${size - 1}`, `0-${MIB64 - 1}`, `${MIB64}-${size - 1}`]);
    await roundTrip(ref, img.layers[0]!);
  }, 60_000);

  it('chunked upload resumes after a connection reset: GET the session, continue from its Range', async () => {
    const ref = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, ref, [4 * CHUNK]);
    let n = 0;
    s.proxy.on('PATCH', /\/blobs\/uploads\//, async (ctx) => {
      // the first chunk goes through, then the connection dies before the registry sees the second
      n++;
      ctx.reply(await ctx.forward());
    });
    s.proxy.on('PATCH', /\/blobs\/uploads\//, (ctx) => { ctx.req.socket.resetAndDestroy(); });
    const events: RegistryEvent[] = [];
    await push(s.store, ref, undefined, { ...fast, chunkSize: CHUNK, onEvent: (e) => events.push(e) });
    expect(n).toBe(1);
    const statusGets = s.proxy.seen.filter((r) => r.method === 'GET' && r.url.includes('/blobs/uploads/'));
    expect(statusGets.length).toBe(1);
    expect(events.some((e) => e.type === 'push-progress' && e.phase === 'resumed' && e.done === CHUNK)).toBe(true);
    // one POST: the session survived, nothing was re-sent from the start
    expect(s.proxy.seen.filter((r) => r.method === 'POST').length).toBe(2); // config (monolithic) + layer
    await roundTrip(ref, img.layers[0]!);
  });

  it('416 on a chunk: recover from the session status', async () => {
    const ref = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, ref, [3 * CHUNK + 7]);
    s.proxy.on('PATCH', /\/blobs\/uploads\//, async (ctx) => ctx.reply(await ctx.forward()));
    s.proxy.on('PATCH', /\/blobs\/uploads\//, (ctx) => { ctx.res.writeHead(416, { 'content-type': 'application/json' }); ctx.res.end('{"errors":[{"code":"BLOB_UPLOAD_INVALID"}]}'); });
    await push(s.store, ref, undefined, { ...fast, chunkSize: CHUNK });
    expect(s.proxy.seen.filter((r) => r.method === 'GET' && r.url.includes('/blobs/uploads/')).length).toBe(1);
    await roundTrip(ref, img.layers[0]!);
  });

  it('a chunk that keeps failing ends in a clear error after bounded attempts, and the session is cancelled', async () => {
    const ref = `${s.proxy.addr}/${uniqueRepo()}:1`;
    await makeRandomImage(s.store, ref, [3 * CHUNK]);
    s.proxy.on('PATCH', /\/blobs\/uploads\//, (ctx) => { ctx.res.writeHead(500); ctx.res.end(); }, 4);
    const e = await push(s.store, ref, undefined, { ...fast, chunkSize: CHUNK }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'REGISTRY' });
    expect((e as Error).message).toMatch(/chunk at 0 failed 4 times/);
    expect(s.proxy.seen.filter((r) => r.method === 'DELETE' && r.url.includes('/blobs/uploads/')).length).toBe(1);
  });

  it('honours OCI-Chunk-Min-Length from the POST answer', async () => {
    const ref = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, ref, [5 * CHUNK]);
    s.proxy.on('POST', /\/blobs\/uploads\/$/, async (ctx) => {
      const u = await ctx.forward();
      ctx.reply({ ...u, headers: { ...u.headers, 'oci-chunk-min-length': String(2 * CHUNK) } });
    }, 2);
    await push(s.store, ref, undefined, { ...fast, chunkSize: CHUNK });
    const lens = s.proxy.seen.filter((r) => r.method === 'PATCH').map((r) => r.bodyLength);
    expect(lens.slice(1, -1).every((l) => l >= 2 * CHUNK)).toBe(true);
    await roundTrip(ref, img.layers[0]!);
  });

  it('relative Location headers resolve against the request URL', async () => {
    const ref = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, ref, [1000]);
    s.proxy.on('POST', /\/blobs\/uploads\/$/, async (ctx) => {
      const u = await ctx.forward();
      const loc = new URL(String(u.headers.location), `http://${s.proxy.addr}`);
      ctx.reply({ ...u, headers: { ...u.headers, location: `${loc.pathname}${loc.search}` } });
    }, 2);
    await push(s.store, ref, undefined, fast);
    await roundTrip(ref, img.layers[0]!);
  });

  it('single POST: 202 (registry opened a session) continues with PUT; 201 means stored', async () => {
    const ref202 = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, ref202, [2000]);
    await push(s.store, ref202, undefined, { ...fast, singlePostMaxSize: 1 << 20 });
    expect(s.proxy.seen.some((r) => r.method === 'POST' && r.url.includes('digest=') && r.bodyLength === 2000)).toBe(true);
    await roundTrip(ref202, img.layers[0]!);
    s.proxy.clear();

    // a registry that stores the body of the POST: the proxy does POST+PUT upstream and answers 201
    const ref201 = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img2 = await makeRandomImage(s.store, ref201, [3000]);
    s.proxy.on('POST', /\/blobs\/uploads\/\?digest=/, async (ctx) => {
      const url = new URL(ctx.req.url!, `http://${s.proxy.addr}`);
      const digest = url.searchParams.get('digest')!;
      const opened = await ctx.forward({ url: url.pathname, body: Buffer.alloc(0) });
      const loc = new URL(String(opened.headers.location), `http://${s.proxy.addr}`);
      loc.searchParams.set('digest', digest);
      const done = await ctx.forward({ method: 'PUT', url: `${loc.pathname}${loc.search}` });
      expect(done.status).toBe(201);
      ctx.res.writeHead(201, { location: `${url.pathname.replace(/uploads\/$/, '')}${digest}`, 'docker-content-digest': digest });
      ctx.res.end();
    }, 2);
    await push(s.store, ref201, undefined, { ...fast, singlePostMaxSize: 1 << 20 });
    expect(s.proxy.seen.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/')).length).toBe(0);
    await roundTrip(ref201, img2.layers[0]!);
  });

  it('zero-byte blob uploads', async () => {
    const ref = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, ref, [0]);
    await push(s.store, ref, undefined, fast);
    await roundTrip(ref, img.layers[0]!);
  });

  it('cross-repository mount: 201 when the origin is known; 202 falls back to uploading into the session', async () => {
    const a = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const img = await makeRandomImage(s.store, a, [50_000]);
    await push(s.store, a, undefined, fast);
    // the push recorded where the blobs now live
    expect(await s.store.blobOrigins(img.manifest.layers[0]!.digest)).toContainEqual({ registry: s.proxy.addr, repository: parseReference(a).repository });
    s.proxy.clear();
    const b = `${s.proxy.addr}/${uniqueRepo()}:1`;
    const events: RegistryEvent[] = [];
    await push(s.store, a, b, { ...fast, onEvent: (e) => events.push(e) });
    const mounts = s.proxy.seen.filter((r) => r.method === 'POST' && r.url.includes('mount='));
    expect(mounts.length).toBe(2);
    expect(mounts[0]!.url).toContain(`from=${encodeURIComponent(parseReference(a).repository)}`);
    expect(s.proxy.seen.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/'))).toEqual([]);
    expect(events.filter((e) => e.type === 'push-progress' && e.phase === 'mounted').length).toBe(2);
    await roundTrip(b, img.layers[0]!);
    s.proxy.clear();

    // the registry declines the mount (202 with a session): the client uploads into that session
    const c = `${s.proxy.addr}/${uniqueRepo()}:1`;
    s.proxy.on('POST', /mount=/, async (ctx) => {
      const url = new URL(ctx.req.url!, `http://${s.proxy.addr}`);
      ctx.reply(await ctx.forward({ url: url.pathname }));
    }, 2);
    await push(s.store, a, c, fast);
    expect(s.proxy.seen.filter((r) => r.method === 'POST').length).toBe(2);
    expect(s.proxy.seen.filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/')).length).toBe(2);
    await roundTrip(c, img.layers[0]!);
  });

  it('a Docker-Content-Digest that disagrees with the manifest sent is an error', async () => {
    const ref = `${s.proxy.addr}/${uniqueRepo()}:1`;
    await makeRandomImage(s.store, ref, [10]);
    s.proxy.on('PUT', /\/manifests\//, async (ctx) => {
      const u = await ctx.forward();
      ctx.reply({ ...u, headers: { ...u.headers, 'docker-content-digest': `sha256:${'0'.repeat(64)}` } });
    });
    await expect(push(s.store, ref, undefined, fast)).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  });

  it('a 401 mid-push (expired token) is answered with a fresh token, once', async () => {
    const tproxy = await FaultProxy.start(reg.token);
    try {
      const ref = `${tproxy.addr}/${uniqueRepo()}:1`;
      await makeRandomImage(s.store, ref, [1000, 2000]);
      tproxy.on('PUT', /\/manifests\//, (ctx) => {
        ctx.res.writeHead(401, { 'www-authenticate': `Bearer realm="${reg.tokenServer}/token",service="${reg.tokenService}",scope="repository:${parseReference(ref).repository}:pull,push",error="invalid_token"` });
        ctx.res.end('{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}');
      });
      const creds = staticCredentialSource({ [tproxy.addr]: { username: reg.user, password: reg.password } });
      const r = await push(s.store, ref, undefined, { ...fast, credentials: creds });
      expect(r.digest).toMatch(/^sha256:/);
      expect(tproxy.seen.filter((q) => q.method === 'PUT' && q.url.includes('/manifests/')).length).toBe(2);
      expect(tproxy.pending()).toBe(0);
    } finally {
      await tproxy.close();
    }
  });

  it('streams a large blob from a file without buffering it (library API: pushBlob with storeSource)', async () => {
    const ref = parseReference(`${s.proxy.addr}/${uniqueRepo()}:1`);
    const img = await makeRandomImage(s.store, undefined, [3 * 1024 * 1024]);
    const client = new RegistryClient({ ...fast, chunkSize: 1024 * 1024 });
    try {
      const d = img.manifest.layers[0]!;
      expect(await client.pushBlob(ref, d, storeSource(s.store, d.digest))).toBe('uploaded');
      expect(await client.pushBlob(ref, d, storeSource(s.store, d.digest))).toBe('exists');
      expect(await client.blobSize(ref, d.digest)).toBe(d.size);
    } finally {
      await client.close();
    }
  });
});
