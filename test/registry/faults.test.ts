import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { MediaType } from '../../src/image/media-types.js';
import { parseReference, pull, push, type RegistryEvent } from '../../src/registry/index.js';
import { freePort } from '../setup/distribution.js';
import { resetAfter, truncateAfter } from './helpers/fault-proxy.js';
import { makeRandomImage, tempStore, uniqueRepo, type TestImage } from './helpers/images.js';
import { useProxiedStore } from './helpers/proxied-store.js';
import { rejection } from './helpers/rejection.js';

const reg = inject('registry');
const fast = { retry: { baseDelayMs: 10, maxDelayMs: 1500, maxAttempts: 4 } };

describe('faults through a loopback proxy', () => {
  const src = useProxiedStore(reg.anon, { settleEachTest: true });
  let repo: string;
  let img: TestImage;
  const layerSize = 600_000;

  beforeAll(async () => {
    repo = uniqueRepo('faults');
    img = await makeRandomImage(src.store, `${reg.anon}/${repo}:1`, [layerSize, 1000]);
    await push(src.store, `${reg.anon}/${repo}:1`);
  });

  const ref = (): string => `${src.proxy.addr}/${repo}:1`;
  const bigLayer = (): RegExp => new RegExp(`/blobs/${img.manifest.layers[0]!.digest}$`);

  async function pullFresh(opts: Parameters<typeof pull>[2] = {}): Promise<{ result: Awaited<ReturnType<typeof pull>>; store: Awaited<ReturnType<typeof tempStore>> }> {
    const store = await tempStore();
    try {
      const result = await pull(store.store, ref(), { ...fast, ...opts });
      return { result, store };
    } catch (e) {
      await store.dispose();
      throw e;
    }
  }

  it('connection reset mid-blob: the download resumes with Range', async () => {
    src.proxy.on('GET', bigLayer(), async (ctx) => resetAfter(ctx, await ctx.forward(), 200_000));
    const events: RegistryEvent[] = [];
    const { result, store } = await pullFresh({ onEvent: (e) => events.push(e) });
    try {
      expect(result.manifestDigest).toBe(img.descriptor.digest);
      expect((await store.store.readBlob(img.manifest.layers[0]!.digest)).equals(img.layers[0]!)).toBe(true);
      const gets = src.proxy.seen.filter((r) => r.method === 'GET' && bigLayer().test(r.url));
      expect(gets.length).toBe(2);
      expect(gets[1]!.headers.range).toMatch(/^bytes=\d+-/);
      expect(events.some((e) => e.type === 'pull-progress' && e.phase === 'resumed')).toBe(true);
    } finally {
      await store.dispose();
    }
  });

  it('a registry that ignores Range on the resume: the bytes already kept are skipped', async () => {
    src.proxy.on('GET', bigLayer(), async (ctx) => resetAfter(ctx, await ctx.forward(), 300_000));
    src.proxy.on('GET', bigLayer(), async (ctx) => ctx.reply(await ctx.forward({ headers: withoutRange(ctx.req.headers) })));
    const { store } = await pullFresh();
    try {
      expect((await store.store.readBlob(img.manifest.layers[0]!.digest)).equals(img.layers[0]!)).toBe(true);
      expect(src.proxy.seen.filter((r) => bigLayer().test(r.url))[1]!.headers.range).toMatch(/^bytes=\d+-/);
    } finally {
      await store.dispose();
    }
  });

  it('truncated body (clean close before Content-Length): resumes and completes', async () => {
    src.proxy.on('GET', bigLayer(), async (ctx) => truncateAfter(ctx, await ctx.forward(), 100_000));
    const { store } = await pullFresh();
    try {
      expect(await store.store.hasBlob(img.manifest.layers[0]!.digest)).toBe(true);
    } finally {
      await store.dispose();
    }
  });

  it('a body that keeps getting truncated ends in a clear error after bounded attempts, nothing kept', async () => {
    src.proxy.on('GET', bigLayer(), async (ctx) => truncateAfter(ctx, await ctx.forward({ headers: withoutRange(ctx.req.headers) }), 1000), 4);
    const store = await tempStore();
    try {
      const e = await rejection(pull(store.store, ref(), fast));
      expect(e.code).toBe('REGISTRY');
      expect(e.message).toMatch(/download failed after 4 attempts/);
      expect(await store.store.hasBlob(img.manifest.layers[0]!.digest)).toBe(false);
      expect(await store.store.resolve(parseReference(ref()).toString())).toBeUndefined();
      expect(await readdir(join(store.root, 'tmp')).then((l) => l.filter((n) => n !== 'partial'))).toEqual([]);
    } finally {
      await store.dispose();
    }
  });

  it('500 then success on the manifest', async () => {
    src.proxy.on('GET', /\/manifests\/1$/, (ctx) => { ctx.res.writeHead(500); ctx.res.end('boom'); });
    const { result, store } = await pullFresh();
    await store.dispose();
    expect(result.manifestDigest).toBe(img.descriptor.digest);
    expect(src.proxy.seen.filter((r) => /\/manifests\/1$/.test(r.url)).length).toBe(2);
  });

  it('429 with Retry-After on a push, then success', async () => {
    const s = await tempStore();
    try {
      await makeRandomImage(s.store, `${src.proxy.addr}/${repo}-429:1`, [100]);
      src.proxy.on('HEAD', /\/blobs\//, (ctx) => { ctx.res.writeHead(429, { 'retry-after': '1' }); ctx.res.end(); });
      const r = await push(s.store, `${src.proxy.addr}/${repo}-429:1`, undefined, fast);
      expect(r.digest).toMatch(/^sha256:/);
    } finally {
      await s.dispose();
    }
  });

  it('persistent 503 stops after the bounded attempts; 404 is never retried', async () => {
    src.proxy.on('GET', /\/manifests\/1$/, (ctx) => { ctx.res.writeHead(503); ctx.res.end(); }, 4);
    const store = await tempStore();
    try {
      const e = await rejection(pull(store.store, ref(), fast));
      expect(e.code).toBe('REGISTRY');
      expect(e.message).toMatch(/answered 503/);
      expect(src.proxy.seen.filter((r) => /\/manifests\/1$/.test(r.url)).length).toBe(4);
      src.proxy.clear();
      const nf = await rejection(pull(store.store, `${src.proxy.addr}/${repo}:nope`, fast));
      expect(nf.code).toBe('NOT_FOUND');
      expect(nf.message).toMatch(/MANIFEST_UNKNOWN/);
      expect(src.proxy.seen.filter((r) => /\/manifests\/nope$/.test(r.url)).length).toBe(1);
    } finally {
      await store.dispose();
    }
  });

  it('wrong digest: the blob is refused, both digests named, nothing half-written', async () => {
    src.proxy.on('GET', bigLayer(), async (ctx) => {
      const u = await ctx.forward();
      const body = Buffer.from(u.body);
      body[body.length - 1] = body[body.length - 1]! ^ 0xff;
      ctx.reply({ ...u, body });
    });
    const store = await tempStore();
    try {
      const e = await rejection(pull(store.store, ref(), fast));
      expect(e.code).toBe('DIGEST_MISMATCH');
      expect(e.message).toContain(img.manifest.layers[0]!.digest);
      const corrupted = Buffer.from(img.layers[0]!);
      corrupted[corrupted.length - 1] = corrupted[corrupted.length - 1]! ^ 0xff;
      expect(e.message).toContain(`sha256:${createHash('sha256').update(corrupted).digest('hex')}`);
      expect(await store.store.hasBlob(img.manifest.layers[0]!.digest)).toBe(false);
      expect(await store.store.resolve(parseReference(ref()).toString())).toBeUndefined();
      expect(await store.store.hasBlob(img.descriptor.digest)).toBe(false);
      expect(await readdir(join(store.root, 'tmp')).then((l) => l.filter((n) => n !== 'partial'))).toEqual([]);
    } finally {
      await store.dispose();
    }
  });

  it('a manifest whose bytes do not match the digest asked for is refused', async () => {
    src.proxy.on('GET', new RegExp(`/manifests/${img.descriptor.digest}$`), async (ctx) => {
      const u = await ctx.forward();
      ctx.reply({ ...u, body: Buffer.concat([u.body, Buffer.from('  ')]) });
    });
    const store = await tempStore();
    try {
      const e = await rejection(pull(store.store, `${src.proxy.addr}/${repo}@${img.descriptor.digest}`, fast));
      expect(e.code).toBe('DIGEST_MISMATCH');
    } finally {
      await store.dispose();
    }
  });

  it('unknown manifest media type and schema 1 are refused clearly', async () => {
    src.proxy.on('GET', /\/manifests\/1$/, async (ctx) => {
      const u = await ctx.forward();
      const doc = JSON.parse(u.body.toString()) as Record<string, unknown>;
      doc.mediaType = 'application/vnd.example.unknown+json';
      ctx.reply({ ...u, headers: { ...u.headers, 'content-type': 'application/vnd.example.unknown+json', 'docker-content-digest': undefined }, body: Buffer.from(JSON.stringify(doc)) });
    });
    const store = await tempStore();
    try {
      const e = await rejection(pull(store.store, ref(), fast));
      expect(e.code).toBe('UNSUPPORTED');
      expect(e.message).toMatch(/unknown manifest media type "application\/vnd.example.unknown\+json"/);
      src.proxy.on('GET', /\/manifests\/1$/, (ctx) => {
        ctx.res.writeHead(200, { 'content-type': MediaType.DOCKER_SCHEMA1_SIGNED });
        ctx.res.end(JSON.stringify({ schemaVersion: 1, name: repo, tag: '1', fsLayers: [] }));
      });
      const s1 = await rejection(pull(store.store, ref(), fast));
      expect(s1.code).toBe('UNSUPPORTED');
      expect(s1.message).toMatch(/schema 1/);
      expect((await store.store.listRefs()).length).toBe(0);
    } finally {
      await store.dispose();
    }
  });

  it('mirrors for docker.io are tried in order; a dead mirror falls through to the next', async () => {
    // the anonymous registry plays a Docker Hub mirror: library/<name> there is docker.io/<name>
    const name = `mirrortest-${process.pid}`;
    const s = await tempStore();
    try {
      await makeRandomImage(s.store, `${reg.anon}/library/${name}:1`, [100]);
      await push(s.store, `${reg.anon}/library/${name}:1`);
      const dead = await freePort();
      const d = await tempStore();
      try {
        const events: RegistryEvent[] = [];
        const r = await pull(d.store, `${name}:1`, { ...fast, mirrors: [`http://127.0.0.1:${dead}`, `http://${src.proxy.addr}`], onEvent: (e) => events.push(e) });
        expect(r.ref.toString()).toBe(`docker.io/library/${name}:1`);
        expect(await d.store.resolve(`docker.io/library/${name}:1`)).toBeDefined();
        expect(events.some((e) => e.type === 'warning' && /mirror 127\.0\.0\.1:\d+ failed/.test(e.message))).toBe(true);
        expect(src.proxy.seen.some((q) => q.url === `/v2/library/${name}/manifests/1`)).toBe(true);
      } finally {
        await d.dispose();
      }
    } finally {
      await s.dispose();
    }
  });
});

function withoutRange(h: import('node:http').IncomingHttpHeaders): import('node:http').IncomingHttpHeaders {
  const { range: _range, ...rest } = h;
  return rest;
}
