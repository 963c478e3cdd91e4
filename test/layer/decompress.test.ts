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
