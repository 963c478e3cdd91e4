import { readFile, writeFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bench, BASE, ranSteps, executedSteps, type Bench } from '../builder/helpers.js';
import type { BuildEvent } from '../../src/events/index.js';

/**
 * Two kiln roots stand for two CI machines; the real registry carries the
 * cache between them.
 */
let a: Bench;
let b: Bench;
const files = {
  Dockerfile: `FROM ${BASE} AS builder
RUN --mount=type=cache,target=/var/cache/pkg sh -c 'echo warm >> /var/cache/pkg/log; dd if=/dev/urandom of=/big bs=1k count=256 2>/dev/null; echo built > /out.txt'
FROM ${BASE}
COPY app.txt /app.txt
COPY --from=builder /out.txt /out.txt
RUN cat /app.txt /out.txt > /combined.txt
`,
  'app.txt': 'app v1\n',
};

beforeAll(async () => {
  a = await bench();
  b = await bench();
});
afterAll(async () => {
  await a.cleanup();
  await b.cleanup();
});

const layerInfoOf = (events: BuildEvent[], text: string) => {
  const e = events.find((x) => x.type === 'step-done' && x.step.text.startsWith(text));
  return e && e.type === 'step-done' ? e.layer : undefined;
};
const layerOf = (events: BuildEvent[], text: string) => layerInfoOf(events, text)?.digest;
const layerDiffIDOf = (events: BuildEvent[], text: string) => layerInfoOf(events, text)?.diffID;

describe('automatic garbage collection after a build', () => {
  it('evicts least recently used cache the store no longer needs, never what a tag holds', async () => {
    const old = await a.build(await a.context({ Dockerfile: `FROM ${BASE}\nRUN head -c 300000 /dev/urandom > /old.bin\n` }), { tags: ['localhost/gc/old:1'], gcKeepStorage: 0 });
    const oldLayer = old.result.config.rootfs.diff_ids.length;
    const oldDigest = (await (await a.store()).getImage('localhost/gc/old:1')).layers[oldLayer - 1]!.digest;
    await (await a.store()).removeRef('localhost/gc/old:1');
    await a.release();
    const fresh = await a.build(await a.context({ Dockerfile: `FROM ${BASE}\nRUN echo fresh > /fresh.txt\n` }), { tags: ['localhost/gc/fresh:1'], gcKeepStorage: 1 });
    expect(fresh.result.executedSteps).toBe(1);
    const store = await a.store();
    expect(await store.hasBlob(oldDigest)).toBe(false);
    expect(await a.read('localhost/gc/fresh:1', '/fresh.txt')).toBe('fresh\n');
    expect(await a.read(BASE, '/etc/passwd')).toContain('app:x:1000');
  });
});

describe('shared build cache through a registry', () => {
  it('machine B builds from machine A\'s cache without running a RUN, pulling only the layers of the steps that hit', async () => {
    const ref = `${inject('registry').anon}/cache/shared:${Date.now()}`;
    const ctxA = await a.context(files);
    const built = await a.build(ctxA, { tags: ['localhost/app:1'], cacheTo: [{ type: 'registry', ref, mode: 'max', cacheMounts: true }] });
    expect(ranSteps(built.events)).toHaveLength(2);
    const warnings = built.events.filter((e) => e.type === 'warning' && e.message.includes('cache export'));
    expect(warnings).toEqual([]);
    const builderLayer = layerOf(built.events, 'RUN --mount=type=cache');
    expect(builderLayer).toBeDefined();

    const ctxB = await b.context(files);
    const fromCache = await b.build(ctxB, { tags: ['localhost/app:1'], cacheFrom: [{ type: 'registry', ref }] });
    expect(ranSteps(fromCache.events)).toEqual([]);
    expect(executedSteps(fromCache.events)).toEqual([]);
    expect(fromCache.result.manifestDigest).not.toBe('');
    expect(await b.read('localhost/app:1', '/combined.txt')).toBe('app v1\nbuilt\n');
    // the builder stage's 256 KiB layer is not part of the image; it was downloaded only to prove its
    // diffID before its step counted as cached (an imported record's layer pair is a claim until then)
    const storeB = await b.store();
    expect((await storeB.getImage('localhost/app:1')).layers.map((l) => l.digest)).not.toContain(builderLayer);
    expect((await storeB.blobsForDiffID(layerDiffIDOf(built.events, 'RUN --mount=type=cache')!, { verifiedOnly: true })).map((d) => d.digest)).toContain(builderLayer);
    // the cache mount travelled too
    const mounts = await readdir(path.join(b.root, 'cache-mounts'));
    const dir = mounts.find((m) => !m.endsWith('.lock'));
    expect(await readFile(path.join(b.root, 'cache-mounts', dir!, 'log'), 'utf8')).toBe('warm\n');

    // one source file changes: B re-runs exactly the steps that read it
    await writeFile(path.join(ctxB, 'app.txt'), 'app v2\n');
    const changed = await b.build(ctxB, { tags: ['localhost/app:2'], cacheFrom: [{ type: 'registry', ref }] });
    expect(ranSteps(changed.events)).toEqual(['RUN cat /app.txt /out.txt > /combined.txt']);
    // everything after the changed COPY re-runs (COPY --from too: its parent changed); the builder stage does not
    expect(executedSteps(changed.events)).toEqual(['COPY app.txt /app.txt', 'COPY --from=builder /out.txt /out.txt', 'RUN cat /app.txt /out.txt > /combined.txt']);
    expect(await b.read('localhost/app:2', '/combined.txt')).toBe('app v2\nbuilt\n');
  });

  it('a missing or corrupt cache degrades to a normal build with a warning', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo ok > /ok.txt\n` });
    const missing = `${inject('registry').anon}/cache/none:nothing`;
    const r = await b.build(ctx, { tags: ['localhost/degrade:1'], cacheFrom: [{ type: 'registry', ref: missing }, { type: 'local', src: path.join(b.dir, 'no-such-dir') }] });
    expect(ranSteps(r.events)).toHaveLength(1);
    expect(r.events.some((e) => e.type === 'warning' && e.message.includes('cache'))).toBe(true);
    expect(await b.read('localhost/degrade:1', '/ok.txt')).toBe('ok\n');

    const corrupt = path.join(b.dir, 'corrupt-cache');
    await a.build(await a.context({ Dockerfile: `FROM ${BASE}\nRUN echo x > /x\n` }), { cacheTo: [{ type: 'local', dest: corrupt, mode: 'min', cacheMounts: false }] });
    const index = JSON.parse(await readFile(path.join(corrupt, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const manifest = JSON.parse(await readFile(path.join(corrupt, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { config: { digest: string } };
    await writeFile(path.join(corrupt, 'blobs', 'sha256', manifest.config.digest.slice(7)), '{"not":"a cache"');
    const r2 = await b.build(ctx, { noCache: false, cacheFrom: [{ type: 'local', src: corrupt }] });
    expect(r2.events.some((e) => e.type === 'warning' && e.message.includes('cache import'))).toBe(true);
  });

  it('exports to and imports from a local directory', async () => {
    const dest = path.join(a.dir, 'local-cache');
    const df = { Dockerfile: `FROM ${BASE}\nRUN echo local > /local.txt\n` };
    await a.build(await a.context(df), { cacheTo: [{ type: 'local', dest, mode: 'min', cacheMounts: false }] });
    const r = await b.build(await b.context(df), { tags: ['localhost/local:1'], cacheFrom: [{ type: 'local', src: dest }] });
    expect(ranSteps(r.events)).toEqual([]);
    expect(await b.read('localhost/local:1', '/local.txt')).toBe('local\n');
  });

  it('carries the cache inline in a pushed image', async () => {
    const ref = `${inject('registry').anon}/cache/inline:${Date.now()}`;
    const df = { Dockerfile: `FROM ${BASE}\nRUN echo inline > /inline.txt\n` };
    await a.build(await a.context(df), { tags: [ref], push: true, cacheTo: [{ type: 'inline', mode: 'min' }] });
    const r = await b.build(await b.context(df), { tags: ['localhost/inline:1'], cacheFrom: [{ type: 'registry', ref }] });
    expect(ranSteps(r.events)).toEqual([]);
    expect(await b.read('localhost/inline:1', '/inline.txt')).toBe('inline\n');
  });
});
