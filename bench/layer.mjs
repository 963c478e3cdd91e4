// Layer writer benchmark: `npm run build && node bench/layer.mjs [--mb 500] [--files 20000]`.
// Prints MB/s of writeLayer for a large incompressible file and for many small files, and peak RSS.
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { entriesFromDirectory, gzipPool, writeLayer } from '../dist/layer/index.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const MB = arg('mb', 500);
const FILES = arg('files', 20000);

/** A minimal BlobStore: streams to a file and hashes, like the real store minus fsync/rename. */
function fileStore(dir) {
  let n = 0;
  return {
    async writeBlob(data) {
      const path = join(dir, `blob-${n++}`);
      const out = createWriteStream(path);
      const h = createHash('sha256');
      let size = 0;
      for await (const c of data) {
        h.update(c);
        size += c.length;
        if (!out.write(c)) await new Promise((r) => out.once('drain', r));
      }
      out.end();
      await finished(out);
      rmSync(path);
      return { digest: `sha256:${h.digest('hex')}`, size };
    },
  };
}

function randomStream(total) {
  const pool = randomBytes(16 << 20); // larger than any compressor window: stays incompressible
  let left = total;
  return new Readable({
    highWaterMark: 1 << 20,
    read() {
      if (left === 0) return this.push(null);
      const n = Math.min(left, 1 << 20);
      const off = (total - left) % pool.length;
      left -= n;
      this.push(pool.subarray(off, Math.min(off + n, pool.length)).length === n ? pool.subarray(off, off + n) : Buffer.concat([pool.subarray(off), pool.subarray(0, n - (pool.length - off))]));
    },
  });
}

const root = mkdtempSync(join(tmpdir(), 'kiln-bench-layer-'));
const store = fileStore(root);
const rows = [];
async function measure(name, bytes, fn) {
  const t = performance.now();
  const w = await fn();
  const s = (performance.now() - t) / 1000;
  rows.push({ bench: name, seconds: s.toFixed(2), 'MB/s': (bytes / 1e6 / s).toFixed(0), 'ratio': (w.size / w.uncompressedSize).toFixed(3) });
}

try {
  const big = MB * 1e6;
  const bigEntry = () => [{ path: 'big.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: big, open: () => randomStream(big) }];
  for (const [label, opts] of [
    ['gzip (default level 1, parallel)', {}],
    ['gzip level 6', { compressionLevel: 6 }],
    ['zstd -3 -T0', { compression: 'zstd' }],
    ['uncompressed', { compression: 'uncompressed' }],
  ]) {
    await measure(`${MB} MB random, ${label}`, big, () => writeLayer(bigEntry(), store, opts));
  }

  const ctx = join(root, 'ctx');
  let bytes = 0;
  for (let i = 0; i < FILES; i++) {
    const dir = join(ctx, `d${i % 100}`);
    if (i < 100) mkdirSync(dir, { recursive: true });
    const body = Buffer.from(`file ${i}\n`.repeat(1 + (i % 170)));
    bytes += body.length;
    writeFileSync(join(dir, `f${i}.txt`), body);
  }
  for (const [label, opts] of [
    ['gzip', {}],
    ['uncompressed', { compression: 'uncompressed' }],
  ]) {
    await measure(`${FILES} small files (${(bytes / 1e6).toFixed(1)} MB), ${label}`, bytes, () => writeLayer(entriesFromDirectory(ctx), store, opts));
  }
} finally {
  rmSync(root, { recursive: true, force: true });
  await gzipPool().close();
}
console.table(rows);
console.log(`peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
