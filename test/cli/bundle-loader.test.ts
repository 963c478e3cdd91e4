import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundle } from '../../bin/bundle-loader.mjs';

// The loader reads a bundle's code cache into the buffer its text was read into (a second buffer
// is memory touched for the first time). What V8 is handed must still be exactly the cache file's
// bytes, whichever of the two files is the longer, and the text exactly the bundle's.
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kiln-loader-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Bytes that differ from offset to offset, so a stale or shifted byte shows. */
function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

async function files(name: string, text: string, cache: Buffer | undefined): Promise<{ file: string; cacheFile: string }> {
  const file = path.join(dir, `${name}.cjs`);
  const cacheFile = `${file}.v8-cache`;
  await writeFile(file, text);
  if (cache) await writeFile(cacheFile, cache);
  return { file, cacheFile };
}

describe('readBundle', () => {
  it.each([
    { longer: 'the cache', name: 'short', textLength: 70_000, cacheLength: 300_001, seed: 7 },
    { longer: 'the bundle (none of the text left behind the cache)', name: 'long', textLength: 400_000, cacheLength: 12_345, seed: 3 },
  ])('gives the bundle text and the cache bytes exactly, $longer the longer', async ({ name, textLength, cacheLength, seed }) => {
    const text = `(function () {${'x'.repeat(textLength)}})`;
    const cache = pattern(cacheLength, seed);
    const { file, cacheFile } = await files(name, text, cache);
    const r = readBundle(file, cacheFile);
    expect(r.source).toBe(text);
    expect(r.cachedData).toBeDefined();
    expect(r.cachedData!.length).toBe(cache.length);
    expect(Buffer.compare(r.cachedData!, cache)).toBe(0);
    // one buffer for both, sized for the longer
    expect(r.cachedData!.buffer.byteLength).toBe(Math.max(Buffer.byteLength(text), cache.length));
  });

  it('decodes a bundle that is not ASCII as UTF-8', async () => {
    const text = '(function () { return "µs — ünïcode"; })';
    const { file, cacheFile } = await files('utf8', text, pattern(100, 1));
    expect(readBundle(file, cacheFile).source).toBe(text);
  });

  it('gives no cache when there is none, or when it is older than the bundle', async () => {
    const none = await files('none', '(function () {})', undefined);
    expect(readBundle(none.file, none.cacheFile)).toEqual({ source: '(function () {})', cachedData: undefined });
    const stale = await files('stale', '(function () {})', pattern(64, 9));
    const past = new Date(Date.now() - 60_000);
    await utimes(stale.cacheFile, past, past);
    expect(readBundle(stale.file, stale.cacheFile).cachedData).toBeUndefined();
  });
});
