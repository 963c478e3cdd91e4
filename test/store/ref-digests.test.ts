import { readFile, writeFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Descriptor, Index } from '../../src/image/types.js';
import { prune } from '../../src/store/gc.js';
import { nameRefusal, tagRefusal } from '../../src/store/ref-names.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { tempStore } from '../helpers/temp-dir.js';

/**
 * The store's side of `name@digest`: setRef records such a name only for the
 * content its digest names, and resolveImage looks such a reference up by the
 * digest, whatever index.json says the name points to.
 */
const ZERO = `sha256:${'0'.repeat(64)}`;

let t: Awaited<ReturnType<typeof tempStore>>;
let image: Descriptor;
beforeEach(async () => {
  t = await tempStore();
  image = await makeBusyboxImage(t.store, null);
});
afterEach(async () => t.cleanup());

async function refusal(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  return isKilnError(e) ? `${e.code} ${e.message}` : `no KilnError: ${String(e)}`;
}

describe('setRef and a digest in the name', () => {
  it('refuses a name whose digest is not the image\'s, and keeps one that is', async () => {
    expect(await refusal(t.store.setRef(`localhost/x@${ZERO}`, image))).toBe(
      `INVALID_REFERENCE cannot name ${image.digest} "localhost/x@${ZERO}": the digest in the name is not that image's (nor of an index listing it)`,
    );
    await t.store.setRef(`localhost/x@${image.digest}`, image);
    await t.store.setRef(`localhost/x:1@${image.digest}`, image);
    expect((await t.store.listRefs()).map((r) => r.ref).sort()).toEqual([`localhost/x:1@${image.digest}`, `localhost/x@${image.digest}`]);
  });

  it('keeps the index digest for the one platform a pull of that index kept (and GC keeps that index), and nothing else', async () => {
    const index: Index = { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [{ ...image, platform: { os: 'linux', architecture: 'amd64' } }] };
    const { digest } = await t.store.putBytes(Buffer.from(JSON.stringify(index)));
    await t.store.setRef(`localhost/x@${digest}`, image);
    expect((await t.store.resolveImage(`localhost/x@${digest}`))?.digest).toBe(image.digest);
    // prune keeps the index the name is shown true by
    await prune(t.store);
    expect(await t.store.hasBlob(digest)).toBe(true);
    expect((await t.store.resolveImage(`localhost/x@${digest}`))?.digest).toBe(image.digest);
    // a config or layer blob is no index
    const other = await makeBusyboxImage(t.store, null, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(await refusal(t.store.setRef(`localhost/y@${digest}`, other))).toMatch(/^INVALID_REFERENCE cannot name/);
  });

  it('refuses names a digest lookup would take for a digest', async () => {
    for (const name of ['docker.io/library/sha256:abcd', 'sha256:abcd', `docker.io/library/${'a'.repeat(64)}:latest`]) {
      expect(await refusal(t.store.setRef(name, image))).toMatch(/^INVALID_REFERENCE cannot name an image ".*": (refusing to create an ambiguous tag|a repository name cannot be 64 hexadecimal digits)/);
    }
    expect(nameRefusal('ghcr.io/o/sha256:abcd')).toBeUndefined();
    expect(nameRefusal(`ghcr.io/o/${'a'.repeat(64)}:1`)).toBeUndefined();
    expect(tagRefusal(`localhost/x@${image.digest}`)).toBe('refusing to create a tag with a digest reference');
    expect(tagRefusal('localhost/x:1')).toBeUndefined();
  });
});

describe('resolveImage of name@digest', () => {
  it('goes by the digest: a name in index.json pointing elsewhere is not used', async () => {
    // as an older kiln (or a hand edit) left it
    const file = `${t.root}/index.json`;
    const doc = JSON.parse(await readFile(file, 'utf8')) as Index;
    doc.manifests.push({ ...image, annotations: { 'org.opencontainers.image.ref.name': `localhost/evil@${ZERO}` } });
    await writeFile(file, JSON.stringify(doc));
    expect(await t.store.resolveImage(`localhost/evil@${ZERO}`)).toBeUndefined();
    // the content it names is found under any name
    expect((await t.store.resolveImage(`localhost/any@${image.digest}`))?.digest).toBe(image.digest);
    expect(await t.store.resolveImage('localhost/evil@sha256:nothex')).toBeUndefined();
  });
});
