import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BuildEvent } from '../../src/events/index.js';
import type { Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Index, Manifest } from '../../src/image/types.js';
import { parseReference, RegistryClient } from '../../src/registry/index.js';
import { Store } from '../../src/store/store.js';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * An imported build cache (`--cache-from`) pairs each record's layer blob
 * with a diffID, and the store trusts a diffID: it reuses the snapshot of
 * that diffID, and the image config lists it for the blob. A cache anyone
 * could write may pair a hostile blob with a genuine diffID, or carry
 * records of any shape. Both must cost the cache its hit, never the build,
 * and never put in the image a blob that is not the content its config names.
 */
const sha = (b: Buffer): Digest => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

/** base's COPY is the poisoned record; app ships it; Dockerfile.extract (below) reads it through a snapshot. */
const DOCKERFILE = `FROM scratch AS base
COPY a.txt /a.txt
FROM base AS app
COPY b.txt /b.txt
FROM scratch AS copier
COPY --from=base /a.txt /copied.txt
COPY --from=app /b.txt /b.txt
`;
const POISONED_STEP = 'COPY a.txt /a.txt';

/** What a cache document holds, as far as these tests edit it. */
interface CacheConfig {
  records: Array<Record<string, unknown> & { history?: { created_by?: string } | null; layer?: { mediaType: string; digest: string; size: number; diffID: string } }>;
}

let dir: Awaited<ReturnType<typeof tempDir>>;
let ctx: string;
/** The genuine cache, written by a build of the whole Dockerfile (mode=max), and that build's store. */
let genuine: string;
let genuineRoot: string;
/** A gzip layer whose a.txt is not the context's, and whose real diffID is not the one the record keeps. */
let evil: Buffer;

function kiln(root: string, args: string[]) {
  return runKiln(['--root', root, ...args]);
}

/** The build's events (`--progress json` writes one per line on stderr). */
function events(stderr: string): BuildEvent[] {
  return stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as BuildEvent);
}

function stepOutcome(evs: BuildEvent[], text: string): 'ran' | 'cached' | undefined {
  for (const e of evs) {
    if (e.type === 'step-done' && e.step.text === text) return 'ran';
    if (e.type === 'step-cached' && e.step.text === text) return 'cached';
  }
  return undefined;
}

const warnings = (evs: BuildEvent[]): string[] => evs.flatMap((e) => (e.type === 'warning' ? [e.message] : []));

/** The record of base's COPY, the one each test spoils. */
function spoiled(config: CacheConfig): CacheConfig['records'][number] & { layer: NonNullable<CacheConfig['records'][number]['layer']> } {
  const rec = config.records.find((r) => r.history?.created_by?.startsWith(POISONED_STEP));
  if (!rec?.layer) throw new Error(`no record for ${POISONED_STEP} in the cache`);
  return rec as ReturnType<typeof spoiled>;
}

/** The poisoned record: base's COPY now names the evil blob, keeping the genuine diffID. */
function poison(config: CacheConfig, blob: Buffer): CacheConfig {
  const rec = spoiled(config);
  rec.layer = { ...rec.layer, digest: sha(blob), size: blob.length };
  return config;
}

/** The index, manifest and cache config of an OCI layout cache. */
async function readLayoutCache(layout: string): Promise<{ index: Index; manifest: Manifest; config: CacheConfig }> {
  const blob = (d: string) => join(layout, 'blobs', 'sha256', d.slice('sha256:'.length));
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Index;
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as Manifest;
  return { index, manifest, config: JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as CacheConfig };
}

/** Rewrites the cache config of an OCI layout cache with `edit`, adding `extra` blobs; returns the new directory. */
async function rewriteLocal(name: string, edit: (c: CacheConfig) => CacheConfig, extra: Buffer[] = []): Promise<string> {
  const out = join(dir.path, name);
  await rm(out, { recursive: true, force: true });
  await cp(genuine, out, { recursive: true });
  const blob = (d: string) => join(out, 'blobs', 'sha256', d.slice('sha256:'.length));
  const put = async (b: Buffer) => {
    await writeFile(blob(sha(b)), b);
    return { digest: sha(b), size: b.length };
  };
  const read = await readLayoutCache(out);
  const { index, manifest } = read;
  const config = edit(read.config);
  for (const b of extra) manifest.layers.push({ mediaType: MediaType.OCI_LAYER_GZIP, ...(await put(b)) });
  manifest.config = { ...manifest.config, ...(await put(Buffer.from(JSON.stringify(config)))) };
  index.manifests[0] = { ...index.manifests[0]!, ...(await put(Buffer.from(JSON.stringify(manifest)))) };
  await writeFile(join(out, 'index.json'), JSON.stringify(index));
  return out;
}

/** Every layer of `tag` in the store at `root` decompresses to the diffID its config names; returns app's a.txt as the image holds it. */
async function expectHonestImage(root: string, tag: string): Promise<string> {
  const store = await Store.open(root);
  try {
    const image = await store.getImage(tag);
    expect(image.layers.length).toBeGreaterThan(0);
    let aTxt = '';
    for (const [i, l] of image.layers.entries()) {
      const tar = gunzipSync(await store.readBlob(l.digest));
      expect(sha(tar)).toBe(image.config.rootfs.diff_ids[i]);
      if (i === 0) aTxt = execFileSync('tar', ['-xOf', '-', 'a.txt'], { input: tar }).toString();
    }
    return aTxt;
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  await rebuildIfStale(['cache/document', 'cache/remote/imported', 'cache/remote/local', 'cache/remote/registry', 'cache/remote/index', 'solver/solver', 'layer/decompress']);
  dir = await tempDir('kiln-cache-import-');
  ctx = join(dir.path, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'Dockerfile'), DOCKERFILE);
  await writeFile(join(ctx, 'Dockerfile.extract'), 'FROM scratch AS base\nCOPY a.txt /a.txt\nFROM scratch\nCOPY --from=base /a.txt /extracted.txt\n');
  await writeFile(join(ctx, 'a.txt'), 'genuine a\n');
  await writeFile(join(ctx, 'b.txt'), 'genuine b\n');
  genuine = join(dir.path, 'genuine-cache');
  genuineRoot = join(dir.path, 'store-genuine');
  const built = await kiln(genuineRoot, ['build', '--progress', 'plain', '--cache-to', `type=local,dest=${genuine},mode=max`, '-t', 'localhost/copier:1', ctx]);
  expect(built.code, built.stderr).toBe(0);

  const src = join(dir.path, 'evil-src');
  await mkdir(src);
  await writeFile(join(src, 'a.txt'), 'EVIL CONTENT\n');
  await writeFile(join(src, 'evil.sh'), '#!/bin/sh\necho pwned\n');
  evil = gzipSync(execFileSync('tar', ['-C', src, '--owner=0', '--group=0', '--mtime=@0', '-cf', '-', 'a.txt', 'evil.sh']));
});

afterAll(async () => {
  await dir?.cleanup();
});

describe('an imported cache record whose blob is not its diffID', () => {
  it('is dropped in a fresh store: the step runs, with a warning, and the image holds the genuine layer', async () => {
    const hostile = await rewriteLocal('hostile-fresh', (c) => poison(c, evil), [evil]);
    const root = join(dir.path, 'store-fresh');
    const r = await kiln(root, ['build', '--progress', 'json', '--cache-from', `type=local,src=${hostile}`, '--target', 'app', '-t', 'localhost/app:1', ctx]);
    expect(r.code, r.stderr).toBe(0);
    const evs = events(r.stderr);
    expect(stepOutcome(evs, POISONED_STEP)).toBe('ran');
    // the rest of the cache is still used
    expect(stepOutcome(evs, 'COPY b.txt /b.txt')).toBe('cached');
    expect(warnings(evs).filter((w) => w.includes(hostile))).toEqual([
      expect.stringMatching(new RegExp(`^cache import ${hostile}: not using its record for step "${POISONED_STEP}": its layer ${sha(evil)} decompresses to sha256:[0-9a-f]{64}, not the diffID sha256:[0-9a-f]{64} it claims; the step runs$`)),
    ]);
    expect(await expectHonestImage(root, 'localhost/app:1')).toBe('genuine a\n');
    const fsck = await kiln(root, ['fsck']);
    expect(fsck.code, fsck.stdout + fsck.stderr).toBe(0);
  });

  it('is dropped in a store that already has the genuine snapshot of that diffID', async () => {
    const hostile = await rewriteLocal('hostile-snapshot', (c) => poison(c, evil), [evil]);
    const root = join(dir.path, 'store-snapshot');
    await cp(genuineRoot, root, { recursive: true });
    const store = await Store.open(root);
    try {
      // the genuine layer's snapshot is there; the store's own records are not, so the imported one is looked up
      const { mediaType, digest, size, diffID } = spoiled((await readLayoutCache(genuine)).config).layer;
      expect(await store.snapshotPath({ descriptor: { mediaType, digest: digest as Digest, size }, diffID: diffID as Digest })).toBe(store.snapshotDir(diffID as Digest));
      await rm(store.layout.cacheRecords, { recursive: true, force: true });
    } finally {
      await store.close();
    }
    const r = await kiln(root, ['build', '--progress', 'json', '--cache-from', `type=local,src=${hostile}`, '--target', 'app', '-t', 'localhost/app:1', ctx]);
    expect(r.code, r.stderr).toBe(0);
    const evs = events(r.stderr);
    expect(stepOutcome(evs, POISONED_STEP)).toBe('ran');
    expect(warnings(evs).some((w) => w.includes(`not using its record for step "${POISONED_STEP}"`))).toBe(true);
    expect(await expectHonestImage(root, 'localhost/app:1')).toBe('genuine a\n');
  });

  it('is dropped where a later step must extract it, instead of failing the build', async () => {
    const hostile = await rewriteLocal('hostile-extract', (c) => poison(c, evil), [evil]);
    const root = join(dir.path, 'store-extract');
    // a COPY --from the cache has no record of: it runs, and so reads base's layer from a snapshot
    const r = await kiln(root, ['build', '--progress', 'json', '--cache-from', `type=local,src=${hostile}`, '-f', join(ctx, 'Dockerfile.extract'), '-t', 'localhost/extract:1', ctx]);
    expect(r.code, r.stderr).toBe(0);
    const evs = events(r.stderr);
    expect(stepOutcome(evs, POISONED_STEP)).toBe('ran');
    expect(stepOutcome(evs, 'COPY --from=base /a.txt /extracted.txt')).toBe('ran');
    expect(warnings(evs).some((w) => w.includes(`not using its record for step "${POISONED_STEP}"`))).toBe(true);
    const store = await Store.open(root);
    try {
      const image = await store.getImage('localhost/extract:1');
      expect(execFileSync('tar', ['-xOzf', '-', 'extracted.txt'], { input: await store.readBlob(image.layers[0]!.digest) }).toString()).toBe('genuine a\n');
    } finally {
      await store.close();
    }
  });

  it('is dropped when it comes from a registry cache too', async () => {
    const reg = inject('registry');
    const ref = parseReference(`${reg.anon}/hostile-cache/import:${Date.now()}`);
    const seed = await kiln(genuineRoot, ['build', '--progress', 'plain', '--cache-to', `type=registry,ref=${ref.toString()},mode=max`, '-t', 'localhost/copier:1', ctx]);
    expect(seed.code, seed.stderr).toBe(0);
    // the registry's cache manifest is replaced by one whose config pairs the evil blob with the genuine diffID
    const client = new RegistryClient();
    try {
      const manifest = JSON.parse((await client.getManifest(ref)).bytes.toString('utf8')) as Manifest;
      const chunks: Buffer[] = [];
      for await (const c of client.blob(ref, manifest.config)) chunks.push(Buffer.from(c));
      const config = Buffer.from(JSON.stringify(poison(JSON.parse(Buffer.concat(chunks).toString('utf8')) as CacheConfig, evil)));
      const push = async (b: Buffer) => {
        const desc = { digest: sha(b), size: b.length };
        await client.pushBlob(ref, desc, async function* (start, end) {
          yield b.subarray(start, end);
        });
        return desc;
      };
      const layers = [...manifest.layers, { mediaType: MediaType.OCI_LAYER_GZIP, ...(await push(evil)) }];
      const hostile = { ...manifest, config: { ...manifest.config, ...(await push(config)) }, layers };
      await client.putManifest(ref, ref.tag!, Buffer.from(JSON.stringify(hostile)), MediaType.OCI_MANIFEST);
    } finally {
      await client.close();
    }
    const root = join(dir.path, 'store-registry');
    const r = await kiln(root, ['build', '--progress', 'json', '--cache-from', `type=registry,ref=${ref.toString()}`, '--target', 'app', '-t', 'localhost/app:1', ctx]);
    expect(r.code, r.stderr).toBe(0);
    const evs = events(r.stderr);
    expect(stepOutcome(evs, POISONED_STEP)).toBe('ran');
    expect(stepOutcome(evs, 'COPY b.txt /b.txt')).toBe('cached');
    expect(warnings(evs).some((w) => w.startsWith(`cache import ${ref.toString()}: not using its record for step "${POISONED_STEP}"`))).toBe(true);
    expect(await expectHonestImage(root, 'localhost/app:1')).toBe('genuine a\n');
  });
});

describe('a malformed imported cache record', () => {
  const cases: Array<[string, (c: CacheConfig) => CacheConfig, RegExp]> = [
    [
      'a layer digest that is a path',
      (c) => {
        const rec = spoiled(c);
        rec.layer = { ...rec.layer, digest: 'sha256:../../../../etc/passwd' };
        return c;
      },
      /record \d+\.layer\.digest is not a sha256 digest/,
    ],
    [
      'a null history',
      (c) => {
        spoiled(c).history = null;
        return c;
      },
      /record \d+\.history is not a JSON object/,
    ],
    [
      'a negative size and a diffID that is not a digest',
      (c) => {
        const rec = spoiled(c);
        rec.layer = { ...rec.layer, size: -1, diffID: 'sha256:nope' };
        return c;
      },
      /record \d+\.layer\.size is not a non-negative integer/,
    ],
  ];
  for (const [what, edit, why] of cases) {
    it(`${what}: is ignored with one warning, the build succeeds and the rest of the cache is used`, async () => {
      const bad = await rewriteLocal(`malformed-${what.replace(/\W+/g, '-')}`, edit);
      const root = join(dir.path, `store-malformed-${what.replace(/\W+/g, '-')}`);
      const r = await kiln(root, ['build', '--progress', 'json', '--cache-from', `type=local,src=${bad}`, '--target', 'app', '-t', 'localhost/app:1', ctx]);
      expect(r.code, r.stderr).toBe(0);
      const evs = events(r.stderr);
      expect(stepOutcome(evs, POISONED_STEP)).toBe('ran');
      expect(stepOutcome(evs, 'COPY b.txt /b.txt')).toBe('cached');
      const cacheWarnings = warnings(evs).filter((w) => w.includes(bad));
      expect(cacheWarnings).toEqual([expect.stringMatching(why)]);
      expect(cacheWarnings[0]).toContain('1 malformed entry ignored');
      expect(await expectHonestImage(root, 'localhost/app:1')).toBe('genuine a\n');
    });
  }
});
