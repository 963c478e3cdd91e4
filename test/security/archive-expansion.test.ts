import { execFileSync } from 'node:child_process';
import { mkdir, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContextSource } from '../../src/builder/context-source.js';
import { maxExpandedBytes } from '../../src/layer/decompress.js';
import { bench, type Bench } from '../builder/helpers.js';

/**
 * An archive kiln unpacks itself (an ADD archive, a tar context on stdin or from a URL) may expand
 * only so far for its compressed size: a zstd stream of a few kilobytes unpacked to gigabytes, and
 * a 528 KB one to 16 GiB, filling the disk.
 */
let b: Bench;
let bomb: Buffer;
beforeAll(async () => {
  b = await bench();
  // a tar of one 100 MiB file of zeros (sparse on disk), zstd-compressed to a few kilobytes
  const src = path.join(b.dir, 'bomb-src');
  await mkdir(src);
  await writeFile(path.join(src, 'Dockerfile'), 'FROM scratch\n');
  await writeFile(path.join(src, 'zeros'), '');
  await truncate(path.join(src, 'zeros'), 100 * 1024 * 1024);
  bomb = execFileSync('sh', ['-c', 'tar -C "$1" -cf - Dockerfile zeros | zstd -19 -q -c', 'sh', src], { maxBuffer: 16 << 20 });
});
afterAll(async () => {
  await b.cleanup();
});

async function bytesUnder(dir: string): Promise<number> {
  let n = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) n += (await stat(path.join(e.parentPath, e.name))).size;
  }
  return n;
}

describe('the expansion bound', () => {
  it('is 1032 times the compressed size, at least 64 MiB and at most 64 GiB', () => {
    expect(maxExpandedBytes(1000)).toBe(64 * 1024 ** 2);
    expect(maxExpandedBytes(1024 ** 2)).toBe(1032 * 1024 ** 2);
    expect(maxExpandedBytes(1024 ** 3)).toBe(64 * 1024 ** 3);
  });
});

describe('a compressed archive that expands past its bound is refused', () => {
  it('ADD of a zstd archive: the build fails naming the archive, and the store holds no unpacked copy', async () => {
    expect(bomb.length).toBeLessThan(64 * 1024);
    const ctx = await b.context({ Dockerfile: 'FROM scratch\nADD b.tar.zst /\n' });
    await writeFile(path.join(ctx, 'b.tar.zst'), bomb);
    await expect(b.build(ctx)).rejects.toThrow(/cannot unpack archive "b\.tar\.zst": it expands past 67108864 bytes/);
    await b.release();
    // the scratch directory with the decoder's output is gone
    expect(await bytesUnder(path.join(b.root, 'tmp'))).toBe(0);
  });

  it('a tar context on stdin', async () => {
    const e = await openContextSource('-', { stdin: Readable.from([bomb]) }).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(e?.message).toMatch(/^context from stdin: cannot unpack the archive: it expands past 67108864 bytes/);
  });

  it('the control: an archive within its bound unpacks (ADD and stdin)', async () => {
    const small = execFileSync('sh', ['-c', 'd=$(mktemp -d) && printf "FROM scratch\\n" > $d/Dockerfile && head -c 1048576 /dev/zero > $d/z && tar -C $d -cf - Dockerfile z | zstd -q -c && rm -r $d'], { maxBuffer: 16 << 20 });
    const ctx = await b.context({ Dockerfile: 'FROM scratch\nADD s.tar.zst /\n' });
    await writeFile(path.join(ctx, 's.tar.zst'), small);
    await b.build(ctx, { tags: ['localhost/expansion/ok:1'] });
    expect((await b.fs('localhost/expansion/ok:1')).lstat('z')?.size).toBe(1048576);
    const source = await openContextSource('-', { stdin: Readable.from([small]) });
    try {
      expect((await readdir(source.dir)).sort()).toEqual(['Dockerfile', 'z']);
    } finally {
      await source.cleanup();
    }
  });
});

describe('images: a layer and a kiln load archive are bounded the same way', () => {
  it('a zstd layer that expands past its bound is refused when a build unpacks it', async () => {
    // the bomb's tar as one layer: its diffID is the tar's digest, as a registry would serve it
    const tar = execFileSync('zstd', ['-d', '-c'], { input: bomb, maxBuffer: 128 << 20 });
    const { createHash } = await import('node:crypto');
    const diffID = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    const store = await b.store();
    const layer = await store.putBytes(bomb);
    const config = await store.putBytes(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffID] } })));
    const manifest = await store.putBytes(Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: layer.digest, size: layer.size }],
    })));
    await store.setRef('localhost/expansion/bomb:1', { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifest.digest, size: manifest.size });
    const ctx = await b.context({ Dockerfile: 'FROM localhost/expansion/bomb:1\nRUN true\n' });
    const before = await bytesUnder(path.join(b.root, 's'));
    await expect(b.build(ctx)).rejects.toThrow(/layer of \d+ bytes: it expands past 67108864 bytes/);
    await b.release();
    // no snapshot of it, and nothing of the partial extraction left behind
    expect(await bytesUnder(path.join(b.root, 's'))).toBe(before);
    expect(await bytesUnder(path.join(b.root, 'tmp'))).toBe(0);
  });

  it('a zstd kiln load archive that expands past its bound is refused', async () => {
    const { loadArchive } = await import('../../src/export/load.js');
    const file = path.join(b.dir, 'bomb-load.tar.zst');
    await writeFile(file, bomb);
    const store = await b.store();
    await expect(loadArchive(store, file)).rejects.toThrow(/it expands past 67108864 bytes/);
  });
});
