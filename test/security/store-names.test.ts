import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseReference, push } from '../../src/registry/index.js';
import { Store } from '../../src/store/store.js';
import { rebuildIfStale, runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import { makeRandomIndex, uniqueRepo } from '../registry/helpers/images.js';

/**
 * A name with a digest (`name@sha256:…`) is what `FROM name@sha256:…` pins
 * to. The store never records one for other content (build -t, tag, load),
 * and a lookup by such a reference goes by the digest, not by a stored name,
 * so a name recorded unchecked (an older kiln, a hand edit) does not count
 * either. Names a digest lookup would take for a digest (`sha256:abcd`) are
 * refused. All through the CLI on the compiled tree, with images built FROM
 * scratch; the one registry used is the test setup's local one.
 */
const SOURCES = ['cli/commands/tag', 'cli/commands/load', 'cli/commands/rmi', 'cli/store-from-options', 'builder/resolve-options', 'builder/image-source', 'store/refs', 'store/images', 'store/ref-names', 'export/load'];
const ZERO = `sha256:${'0'.repeat(64)}`;
/** Port 1 on loopback: nothing listens, so a lookup that reaches the registry fails at once. */
const EVIL = `localhost:1/evil@${ZERO}`;
const REF_NAME = 'org.opencontainers.image.ref.name';
const CONTAINERD_NAME = 'io.containerd.image.name';

const reg = inject('registry');
let dir: Awaited<ReturnType<typeof tempDir>>;
let ctx: string;
let n = 0;

beforeAll(async () => {
  await rebuildIfStale(SOURCES);
  dir = await tempDir('kiln-names-');
  ctx = join(dir.path, 'ctx');
  await mkdir(ctx);
  await writeFile(join(ctx, 'who'), 'not-the-pinned-image\n');
  await writeFile(join(ctx, 'Dockerfile'), 'FROM scratch\nCOPY who /who\n');
});
afterAll(async () => dir.cleanup());

/** A fresh store root (made by the first command run on it). */
function newRoot(): string {
  return join(dir.path, `store${n++}`);
}

function kiln(root: string, args: string[]): Promise<KilnRun> {
  return runKiln(['--root', root, ...args]);
}

/** The names index.json holds, and how many entries. */
async function indexOf(root: string): Promise<{ refs: string[]; entries: number }> {
  const index = JSON.parse(await readFile(join(root, 'index.json'), 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
  return { refs: index.manifests.flatMap((m) => (m.annotations?.[REF_NAME] ? [m.annotations[REF_NAME]] : [])), entries: index.manifests.length };
}

/** A store holding the context's image as localhost/real:1; returns its manifest digest. */
async function storeWithImage(root: string): Promise<string> {
  const r = await kiln(root, ['build', '-q', '-t', 'localhost/real:1', ctx]);
  expect(r.code, r.stderr).toBe(0);
  const index = JSON.parse(await readFile(join(root, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  return index.manifests[0]!.digest;
}

/** A Dockerfile building FROM `ref`, as its own context. */
async function fromContext(ref: string): Promise<string> {
  const c = join(dir.path, `from${n++}`);
  await mkdir(c);
  await writeFile(join(c, 'Dockerfile'), `FROM ${ref}\n`);
  return c;
}

/** Saves `ref` from `root` as `format`, lets `edit` change the archive's names, and packs it again. */
async function archiveNaming(root: string, ref: string, format: 'oci' | 'docker', edit: (dir: string) => Promise<void>): Promise<string> {
  const tar = join(dir.path, `saved${n++}.tar`);
  const s = await kiln(root, ['save', '--format', format, '-o', tar, ref]);
  expect(s.code, s.stderr).toBe(0);
  const x = join(dir.path, `x${n++}`);
  await mkdir(x);
  execFileSync('tar', ['-xf', tar, '-C', x]);
  await edit(x);
  const out = join(dir.path, `edited${n++}.tar`);
  execFileSync('tar', ['-cf', out, '-C', x, '.']);
  return out;
}

async function renameInOciIndex(x: string, name: string): Promise<void> {
  const file = join(x, 'index.json');
  const index = JSON.parse(await readFile(file, 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
  for (const m of index.manifests) m.annotations = { ...m.annotations, [REF_NAME]: name, [CONTAINERD_NAME]: name };
  await writeFile(file, JSON.stringify(index));
}

async function renameInDockerManifest(x: string, name: string): Promise<void> {
  const file = join(x, 'manifest.json');
  const manifest = JSON.parse(await readFile(file, 'utf8')) as Array<{ RepoTags?: string[] }>;
  for (const e of manifest) e.RepoTags = [name];
  await writeFile(file, JSON.stringify(manifest));
}

const lastLine = (r: KilnRun): string => r.stderr.trim().split('\n').at(-1) ?? '';

describe('a name with a digest is only ever the content of that digest', () => {
  it('build -t, --output name= and tag refuse a name with a digest, as Docker does, and record nothing', async () => {
    const root = newRoot();
    const built = await kiln(root, ['build', '-q', '-t', EVIL, ctx]);
    expect(lastLine(built)).toBe(`kiln: -t ${EVIL}: refusing to create a tag with a digest reference`);
    expect(built.code).toBe(2);
    const output = await kiln(root, ['build', '-q', '-o', `type=image,name=${EVIL}`, ctx]);
    expect(lastLine(output)).toBe(`kiln: --output type=image,name=${EVIL}: refusing to create a tag with a digest reference`);
    expect(output.code).toBe(2);

    await storeWithImage(root);
    const tagged = await kiln(root, ['tag', 'localhost/real:1', EVIL]);
    expect(tagged.stderr).toBe(`kiln: tag ${EVIL}: refusing to create a tag with a digest reference\n`);
    expect(tagged.code).toBe(2);
    expect((await indexOf(root)).refs).toEqual(['localhost/real:1']);
  });

  it.each([
    ['an OCI archive (ref.name and containerd name annotations)', 'oci', renameInOciIndex],
    ['a docker archive (RepoTags)', 'docker', renameInDockerManifest],
  ] as const)('load of %s naming another digest drops the name with a warning, and FROM name@digest does not get that image', async (_what, format, rename) => {
    const src = newRoot();
    const digest = await storeWithImage(src);
    const archive = await archiveNaming(src, 'localhost/real:1', format, (x) => rename(x, EVIL));

    const root = newRoot();
    const loaded = await kiln(root, ['load', '-i', archive]);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stderr).toMatch(new RegExp(`^warning: cannot name sha256:[a-f0-9]{64} "${EVIL.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}": the digest in the name is not that image's`));
    expect(loaded.stdout).toMatch(/^Loaded image: sha256:[a-f0-9]{64}\n$/);
    // the image is there, kept without a name
    expect(await indexOf(root)).toEqual({ refs: [], entries: 1 });
    if (format === 'oci') expect(loaded.stdout.trim()).toBe(`Loaded image: ${digest}`);

    const from = await kiln(root, ['build', '-q', await fromContext(EVIL)]);
    expect(from.code).toBe(1);
    expect(from.stdout).toBe('');
    expect(from.stderr).toMatch(/localhost:1/);
  });

  it('a name recorded without the check (older kiln, hand edit) is not trusted: FROM and save go by the digest; rmi removes it', async () => {
    const root = newRoot();
    await storeWithImage(root);
    const file = join(root, 'index.json');
    const index = JSON.parse(await readFile(file, 'utf8')) as { manifests: Array<{ annotations?: Record<string, string> }> };
    index.manifests.push({ ...index.manifests[0]!, annotations: { [REF_NAME]: EVIL } });
    await writeFile(file, JSON.stringify(index));

    const from = await kiln(root, ['build', '-q', await fromContext(EVIL)]);
    expect(from.code).toBe(1);
    expect(from.stdout).toBe('');
    // looked up by its digest, which the store lacks: off to the registry, not to the planted name
    expect(from.stderr).toMatch(/localhost:1/);
    const saved = await kiln(root, ['save', '-o', join(dir.path, 'evil.tar'), EVIL]);
    expect(saved.stderr).toBe(`kiln: image ${EVIL}: not found in store ${root}\n`);
    expect(saved.code).toBe(1);
    const removed = await kiln(root, ['rmi', EVIL]);
    expect(removed.stdout).toBe(`Untagged: ${EVIL}\n`);
    expect((await indexOf(root)).refs).toEqual(['localhost/real:1']);
  });

  it('a name pinning its own digest is kept by load and used by FROM name@digest from the store', async () => {
    const src = newRoot();
    const digest = await storeWithImage(src);
    const pinned = `localhost:1/real@${digest}`;
    const archive = await archiveNaming(src, 'localhost/real:1', 'oci', (x) => renameInOciIndex(x, pinned));
    const root = newRoot();
    const loaded = await kiln(root, ['load', '-i', archive]);
    expect(loaded.stderr).toBe('');
    expect(loaded.stdout).toBe(`Loaded image: ${pinned}\n`);
    expect((await indexOf(root)).refs).toEqual([pinned]);
    // localhost:1 answers nothing: this build can only have come from the store
    const from = await kiln(root, ['build', '-q', await fromContext(pinned)]);
    expect(from.code, from.stderr).toBe(0);
  });

  it('pull name@digest of a multi-platform index records the name for the platform pulled, and the store resolves it', async () => {
    const srcDir = newRoot();
    const src = await Store.open(srcDir);
    const ref = `${reg.anon}/${uniqueRepo('names')}:multi`;
    const { descriptor, children } = await makeRandomIndex(src, parseReference(ref).toString());
    await push(src, ref);
    await src.close();

    const root = newRoot();
    const byDigest = `${parseReference(ref).name}@${descriptor.digest}`;
    const pulled = await kiln(root, ['pull', '--platform', 'linux/arm64', '--no-unpack', byDigest]);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout.trim()).toBe(children[1]!.descriptor.digest);
    expect((await indexOf(root)).refs).toEqual([byDigest]);
    const store = await Store.open(root);
    try {
      expect((await store.resolveImage(byDigest))?.digest).toBe(children[1]!.descriptor.digest);
    } finally {
      await store.close();
    }
  });
});

describe('names a digest lookup would shadow', () => {
  it.each([
    ['sha256:abcd', 'refusing to create an ambiguous tag using digest algorithm as name'],
    [`sha256:${'a'.repeat(64)}`, 'refusing to create an ambiguous tag using digest algorithm as name'],
    ['a'.repeat(64), 'a repository name cannot be 64 hexadecimal digits (it reads as an image ID)'],
  ])('tag and build -t refuse %s with a clear error', async (name, why) => {
    const root = newRoot();
    await storeWithImage(root);
    const tagged = await kiln(root, ['tag', 'localhost/real:1', name]);
    expect(tagged.stderr).toBe(`kiln: tag ${name}: ${why}\n`);
    expect(tagged.code).toBe(2);
    const built = await kiln(root, ['build', '-q', '-t', name, ctx]);
    expect(lastLine(built)).toBe(`kiln: -t ${name}: ${why}`);
    expect(built.code).toBe(2);
    expect((await indexOf(root)).refs).toEqual(['localhost/real:1']);
  });
});
