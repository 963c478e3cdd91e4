import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildEvent } from '../../src/events/index.js';
import type { Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Index, Manifest } from '../../src/image/types.js';
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

/** base's COPY is the record the tests spoil; app's image ships its layer. */
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
  records: Array<Record<string, unknown> & { history?: { created_by?: string } | null; layer?: { digest: string; size: number; diffID: string } }>;
}

let dir: Awaited<ReturnType<typeof tempDir>>;
let ctx: string;
/** The genuine cache, written by a build of the whole Dockerfile (mode=max), and that build's store. */
let genuine: string;
let genuineRoot: string;

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
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as Index;
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as Manifest;
  const config = edit(JSON.parse(await readFile(blob(manifest.config.digest), 'utf8')) as CacheConfig);
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
  await writeFile(join(ctx, 'a.txt'), 'genuine a\n');
  await writeFile(join(ctx, 'b.txt'), 'genuine b\n');
  genuine = join(dir.path, 'genuine-cache');
  genuineRoot = join(dir.path, 'store-genuine');
  const built = await kiln(genuineRoot, ['build', '--progress', 'plain', '--cache-to', `type=local,dest=${genuine},mode=max`, '-t', 'localhost/copier:1', ctx]);
  expect(built.code, built.stderr).toBe(0);
});

afterAll(async () => {
  await dir?.cleanup();
});

describe('a malformed imported cache record', () => {
  const cases: Array<[string, (c: CacheConfig) => CacheConfig, RegExp]> = [
    [
      'a layer digest that is a path',
      (c) => {
        const rec = c.records.find((x) => x.history?.created_by?.startsWith(POISONED_STEP))!;
        rec.layer = { ...rec.layer!, digest: 'sha256:../../../../etc/passwd' };
        return c;
      },
      /record \d+\.layer\.digest is not a sha256 digest/,
    ],
    [
      'a null history',
      (c) => {
        c.records.find((x) => x.history?.created_by?.startsWith(POISONED_STEP))!.history = null;
        return c;
      },
      /record \d+\.history is not a JSON object/,
    ],
    [
      'a negative size and a diffID that is not a digest',
      (c) => {
        const rec = c.records.find((x) => x.history?.created_by?.startsWith(POISONED_STEP))!;
        rec.layer = { ...rec.layer!, size: -1, diffID: 'sha256:nope' };
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
