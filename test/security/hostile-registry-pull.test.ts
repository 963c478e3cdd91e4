import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Descriptor } from '../../src/image/types.js';
import { Store } from '../../src/store/store.js';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import { HOST_PLATFORM, serveImage, serveIndex, startHostileRegistry, type HostileRegistry } from './hostile-registry.js';

/**
 * A hostile registry against `kiln pull`: indexes that list one big manifest
 * many times, DAGs and chains of nested indexes, indexes over the document
 * count and byte limits, an image whose config does not match its layers
 * replacing a good tag, and a blob longer than its descriptor. Each case
 * asserts what the server counted (requests, bytes) and what the store holds.
 */
const MiB = 1024 * 1024;

describe('kiln pull against a hostile registry', () => {
  let h: HostileRegistry;
  let dir: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    await rebuildIfStale(['registry/client', 'registry/documents', 'registry/pull', 'registry/reference', 'cli/commands/pull']);
    h = await startHostileRegistry();
    dir = await tempDir('kiln-hostile-pull-');
  });
  afterAll(async () => {
    await h.close();
    await dir.cleanup();
  });

  const pull = (root: string, ref: string, ...flags: string[]) =>
    runKiln(['--root', join(dir.path, root), '--insecure-registry', h.addr, 'pull', ...flags, `${h.addr}/${ref}`]);
  const lastLine = (s: string) => s.trim().split('\n').at(-1)!;

  it('an index listing one 3.9 MiB manifest 40 times fetches and holds it once', async () => {
    const big = serveImage(h, { annotations: { pad: 'p'.repeat(3.9 * MiB) } });
    h.tags.set('fanout:1', serveIndex(h, Array.from({ length: 40 }, () => big.descriptor)).digest);
    const r = await pull('fanout', 'fanout:1', '--all-platforms', '--no-unpack', '-q');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(h.count('GET', `/v2/fanout/manifests/${big.descriptor.digest}`)).toBe(1);
    // the index and one copy of the manifest: what crossed the wire is what kiln held
    const sent = h.requests.filter((q) => q.url.startsWith('/v2/fanout/manifests/')).reduce((a, q) => a + q.sent, 0);
    expect(sent).toBeLessThan(4 * MiB + 64 * 1024);
  });

  it('a DAG of indexes that lists each next level twice costs one request per document', async () => {
    const img = serveImage(h, { annotations: { dag: '1' } });
    let child: Descriptor = img.descriptor;
    for (let i = 0; i < 6; i++) child = serveIndex(h, [child, child], { level: String(i) });
    h.tags.set('dag:1', child.digest);
    const r = await pull('dag', 'dag:1', '--all-platforms', '--no-unpack', '-q');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(child.digest);
    // 6 indexes and 1 manifest; without de-duplication 2^7 - 1 = 127
    expect(h.count('GET', '/v2/dag/manifests/')).toBe(7);
  });

  it('indexes nested 8 deep are pulled; 9 deep (or 1,000) are refused after 9 requests', async () => {
    const chain = (repo: string, depth: number): void => {
      let child: Descriptor = serveImage(h, { annotations: { chain: repo } }).descriptor;
      for (let i = 0; i < depth; i++) child = serveIndex(h, [child], { chain: repo });
      h.tags.set(`${repo}:1`, child.digest);
    };
    chain('chain8', 8);
    chain('chain9', 9);
    chain('chain1000', 1000);

    const ok = await pull('chain8', 'chain8:1', '--all-platforms', '--no-unpack', '-q');
    expect(ok.code).toBe(0);
    expect(h.count('GET', '/v2/chain8/manifests/')).toBe(9);

    for (const repo of ['chain9', 'chain1000']) {
      const r = await pull(repo, `${repo}:1`, '--all-platforms', '--no-unpack');
      expect(r.code).toBe(1);
      expect(lastLine(r.stderr)).toMatch(new RegExp(`^kiln: ${h.addr}/${repo}:1: index sha256:[0-9a-f]{64} is nested 9 indexes deep, over kiln's limit of 8$`));
      expect(h.count('GET', `/v2/${repo}/manifests/`)).toBe(9);
      expect(await readdir(join(dir.path, repo, 'blobs', 'sha256'))).toEqual([]);
    }
  });

  it('an index listing 1,001 documents is refused before any of them is fetched', async () => {
    const entries = Array.from({ length: 1001 }, (_, i) => ({ mediaType: MediaType.OCI_MANIFEST, digest: sha256(`m${i}`), size: 500, platform: HOST_PLATFORM }));
    h.tags.set('many:1', serveIndex(h, entries).digest);
    const r = await pull('many', 'many:1', '--all-platforms', '--no-unpack');
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toBe(`kiln: ${h.addr}/many:1: lists more than 1000 manifests and indexes, over kiln's limit of 1000 per pull or copy`);
    expect(h.count('GET', '/v2/many/manifests/sha256:')).toBe(0);
  });

  it('children adding up to more than 64 MiB are refused before any of them is fetched', async () => {
    const entries = Array.from({ length: 17 }, (_, i) => ({ mediaType: MediaType.OCI_MANIFEST, digest: sha256(`big${i}`), size: 4 * MiB, platform: HOST_PLATFORM }));
    const index = serveIndex(h, entries);
    h.tags.set('heavy:1', index.digest);
    const r = await pull('heavy', 'heavy:1', '--all-platforms', '--no-unpack');
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toBe(`kiln: ${h.addr}/heavy:1: its manifests and indexes add up to ${17 * 4 * MiB + index.size} bytes, over kiln's limit of 64 MiB per pull or copy`);
    expect(h.count('GET', '/v2/heavy/manifests/sha256:')).toBe(0);
  });

  it('a pull whose config does not match its layers leaves the tag on the good image', async () => {
    const good = serveImage(h, { annotations: { which: 'good' } });
    h.tags.set('swap:1', good.descriptor.digest);
    const first = await pull('swap', 'swap:1', '-q');
    expect(first.stderr).toBe('');
    expect(first.stdout.trim()).toBe(good.descriptor.digest);

    // 3 diff_ids for 1 layer: the blobs all verify, the image does not hold together
    const bad = serveImage(h, { annotations: { which: 'bad' }, diffIds: [sha256('a'), sha256('b'), sha256('c')] });
    h.tags.set('swap:1', bad.descriptor.digest);
    const r = await pull('swap', 'swap:1');
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toContain('1 layers but 3 diff_ids in its config');
    expect(r.stdout).toBe('');

    const store = await Store.open(join(dir.path, 'swap'));
    try {
      expect((await store.resolve(`${h.addr}/swap:1`))?.digest).toBe(good.descriptor.digest);
    } finally {
      await store.close();
    }
    const fsck = await runKiln(['--root', join(dir.path, 'swap'), 'fsck']);
    expect(fsck.stdout).toMatch(/: ok\n$/);
    expect(fsck.code).toBe(0);

    // a name the store did not have is not created either
    const fresh = await pull('swap-fresh', 'swap:1');
    expect(fresh.code).toBe(1);
    const s2 = await Store.open(join(dir.path, 'swap-fresh'));
    try {
      expect(await s2.listRefs()).toEqual([]);
    } finally {
      await s2.close();
    }
  });

  it('a blob longer than its descriptor fails the pull and keeps no partial file', async () => {
    const declared = 5 * MiB;
    const layer: Descriptor = { mediaType: MediaType.OCI_LAYER_GZIP, digest: sha256('oversized'), size: declared };
    const img = serveImage(h, { layer, annotations: { which: 'oversized' } });
    h.tags.set('longblob:1', img.descriptor.digest);
    h.intercept = (req, res, path) => {
      if (path !== `/v2/longblob/blobs/${layer.digest}`) return false;
      // a megabyte more than the descriptor says, in one answer
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': declared + MiB });
      res.end(Buffer.alloc(declared + MiB, 0x61));
      return true;
    };
    try {
      const r = await pull('longblob', 'longblob:1', '--no-unpack');
      expect(r.code).toBe(1);
      expect(lastLine(r.stderr)).toContain(`registry sent more than the ${declared} bytes the manifest says`);
      expect(lastLine(r.stderr)).toContain('nothing was kept');
      const partial = join(dir.path, 'longblob', 'tmp', 'partial');
      expect(await readdir(partial).catch(() => [])).toEqual([]);
      expect(await readdir(join(dir.path, 'longblob', 'blobs', 'sha256'))).not.toContain(layer.digest.slice(7));
    } finally {
      h.intercept = undefined;
    }
  });
});
