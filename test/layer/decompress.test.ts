import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/media-types.js';
import { openArchive, openUncompressed, sniffArchiveCompression, sniffCompression } from '../../src/layer/decompress.js';
import { collect } from './helpers.js';

const text = Buffer.from('kiln decompressor '.repeat(100));
const viaTool = (tool: string): Buffer => execFileSync(tool, ['-c', '-q'], { input: text });

/** One rule for every compressed input: the first bytes decide, the media type only when they are too few. */
describe('the one decompressor', () => {
  it('decodes a layer by its bytes, whatever its media type says', async () => {
    const gz = gzipSync(text);
    expect(await collect(openUncompressed(Readable.from([gz]), MediaType.OCI_LAYER))).toEqual(text);
    expect(await collect(openUncompressed(Readable.from([viaTool('zstd')]), MediaType.OCI_LAYER_GZIP))).toEqual(text);
    expect(await collect(openUncompressed(Readable.from([text]), MediaType.OCI_LAYER_ZSTD))).toEqual(text);
  });

  it('takes the media type as the hint only when the bytes are too few to tell', () => {
    expect(sniffCompression(Buffer.from([0x00, 0x01]))).toBeUndefined();
    expect(sniffCompression(Buffer.from('abcd'))).toBe('none');
    expect(sniffCompression(gzipSync(text))).toBe('gzip');
  });

  it('knows bzip2 and xz for archives only: a layer is gzip, zstd or plain', async () => {
    const bz = viaTool('bzip2');
    const xz = viaTool('xz');
    expect(sniffArchiveCompression(bz)).toBe('bzip2');
    expect(sniffArchiveCompression(xz)).toBe('xz');
    expect(sniffCompression(bz)).toBe('none');
    expect(await collect(openArchive(Readable.from([bz])))).toEqual(text);
    expect(await collect(openArchive(Readable.from([xz])))).toEqual(text);
  });

  it('names the format when the bytes are damaged', async () => {
    const gz = gzipSync(text);
    const bad = Buffer.concat([gz.subarray(0, 20), Buffer.alloc(40, 0xff)]);
    await expect(collect(openUncompressed(Readable.from([bad]), MediaType.OCI_LAYER_GZIP))).rejects.toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining('gzip') });
  });
});

describe('decodeArchiveFile (ADD archives)', () => {
  it('a signal stops the decoder at once, even one waiting on its input forever', async () => {
    const { decodeArchiveFile } = await import('../../src/layer/decompress.js');
    const { closeSync, constants, existsSync, mkdtempSync, openSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'kiln-decode-'));
    const fifo = join(dir, 'in');
    execFileSync('mkfifo', [fifo]);
    // opened read-write, the FIFO never reaches its end: gzip waits on it for ever
    const fd = openSync(fifo, constants.O_RDWR);
    try {
      const stop = new AbortController();
      const started = Date.now();
      setTimeout(() => stop.abort(new Error('SIGTERM')), 200);
      await expect(decodeArchiveFile(fd, 'gzip', join(dir, 'out.tar'), 'archive "x.tar.gz"', stop.signal)).rejects.toThrow('SIGTERM');
      expect(Date.now() - started).toBeLessThan(5000);
      expect(existsSync(join(dir, 'out.tar'))).toBe(true);
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an archive past its expansion bound is refused by the kernel limit on the decoder', async () => {
    const { decodeArchiveFile } = await import('../../src/layer/decompress.js');
    const { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = mkdtempSync(join(tmpdir(), 'kiln-decode-'));
    try {
      // 80 MiB of zeros in a few kilobytes of zstd (gzip cannot pass 1032:1, which the bound allows)
      writeFileSync(join(dir, 'z.zst'), execFileSync('sh', ['-c', 'head -c 83886080 /dev/zero | zstd -q -c'], { maxBuffer: 1 << 20 }));
      const fd = openSync(join(dir, 'z.zst'), 'r');
      try {
        await expect(decodeArchiveFile(fd, 'zstd', join(dir, 'out'), 'archive "z.zst"')).rejects.toThrow(/cannot unpack archive "z.zst": it expands past 67108864 bytes/);
      } finally {
        closeSync(fd);
      }
      expect(statSync(join(dir, 'out')).size).toBeLessThanOrEqual(64 * 1024 * 1024);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
