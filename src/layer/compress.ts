import { spawn } from 'node:child_process';
import * as zlib from 'node:zlib';
import { KilnError } from '../errors/index.js';
import { MediaType } from '../image/media-types.js';
import { compressBlock } from './gzip-block.js';
import { layerWorkers } from './worker-pool.js';
import type { ByteSource } from './byte-stream.js';
import type { Compression } from './types.js';

/** Size of the independently compressed gzip members. */
export const GZIP_BLOCK = 1 << 20;
/**
 * Blocks compressed on the calling thread before the worker pool takes over,
 * so small layers (the common COPY case) start no thread: starting one costs
 * tens of milliseconds of CPU, several blocks' worth. After these, blocks are
 * still compressed here until a worker has started. The output is the same
 * bytes either way.
 */
const INLINE_BLOCKS = 8;

export const DEFAULT_GZIP_LEVEL = 1;
export const DEFAULT_ZSTD_LEVEL = 3;

export function layerMediaType(c: Compression): string {
  switch (c) {
    case 'gzip':
      return MediaType.OCI_LAYER_GZIP;
    case 'zstd':
      return MediaType.OCI_LAYER_ZSTD;
    case 'uncompressed':
      return MediaType.OCI_LAYER;
  }
}

/**
 * Regroups a byte stream into fixed-size blocks, each in its own ArrayBuffer
 * (so it can be transferred to a worker). Buffers in `free` are reused: the
 * workers hand them back, so a long layer does not churn through a fresh
 * megabyte per block. Every chunk of `src` is copied before the next is asked
 * for, so a source may reuse its buffers (the layer writer does: see
 * `reuseChunks` in tar-writer.ts).
 */
export async function* blocks(src: ByteSource, size: number, free: ArrayBuffer[] = []): AsyncGenerator<Uint8Array> {
  // not zero-filled: every byte handed on is written first (a full block, or the written part of the last)
  const next = (): Uint8Array => new Uint8Array(free.pop() ?? Buffer.allocUnsafeSlow(size).buffer);
  let cur = next();
  let fill = 0;
  for await (const chunk of src) {
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(size - fill, chunk.length - off);
      cur.set(chunk.subarray(off, off + n), fill);
      fill += n;
      off += n;
      if (fill === size) {
        yield cur;
        cur = next();
        fill = 0;
      }
    }
  }
  if (fill > 0) yield cur.slice(0, fill);
}

/**
 * gzip as a sequence of independent members, one per 1 MiB block, compressed
 * on all cores with a bounded number of blocks in flight (backpressure: the
 * source is not read further while the window is full).
 */
export async function* gzipStream(src: ByteSource, level = DEFAULT_GZIP_LEVEL): AsyncGenerator<Buffer> {
  if (!Number.isInteger(level) || level < 0 || level > 9) throw new KilnError('USAGE', `gzip compression level must be 0-9, got ${level}`);
  const free: ArrayBuffer[] = [];
  const recycle = (ab: ArrayBuffer): void => {
    if (ab.byteLength === GZIP_BLOCK && free.length < 8) free.push(ab);
  };
  const window: Promise<Buffer>[] = [];
  let index = 0;
  let maxInFlight = 1;
  for await (const block of blocks(src, GZIP_BLOCK, free)) {
    let p: Promise<Buffer>;
    // inline too while no worker has started: the first blocks do not wait for a thread's start
    if (index < INLINE_BLOCKS || !layerWorkers().readyForBlocks()) {
      const out = compressBlock(zlib, block, level);
      recycle(block.buffer as ArrayBuffer);
      p = Promise.resolve(Buffer.from(out.buffer, out.byteOffset, out.length));
    } else {
      const pool = layerWorkers();
      maxInFlight = pool.size * 3;
      p = pool.gzip(block, level).then((r) => {
        recycle(r.input);
        return r.out;
      });
      // Rejections surface when the window is drained; this only stops an
      // abandoned window (consumer gave up) from reporting them as unhandled.
      p.catch(() => {});
    }
    index++;
    window.push(p);
    while (window.length >= maxInFlight) yield await window.shift()!;
  }
  while (window.length > 0) yield await window.shift()!;
}

/** Waits until `stream` can take more, or has closed (so a dead child never hangs the writer). */
function drained(stream: NodeJS.WritableStream & { destroyed?: boolean }): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

/**
 * Pipes bytes through a child process (the zstd CLI), reading its output as
 * it comes; the source is pulled only as fast as the child drains its stdin.
 */
export async function* pipeThrough(cmd: string, args: string[], src: ByteSource, what: string): AsyncGenerator<Buffer> {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  let spawnError: Error | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (e) => {
      spawnError = e;
      resolve(null);
    });
    child.on('close', (code) => resolve(code));
  });
  child.stdin.on('error', () => {}); // EPIPE when the child dies early; reported through its exit status.
  let pumpError: unknown;
  const pump = (async () => {
    try {
      for await (const chunk of src) {
        if (child.stdin.destroyed) break;
        if (!child.stdin.write(chunk)) await drained(child.stdin);
      }
      child.stdin.end();
    } catch (e) {
      pumpError = e;
      child.kill('SIGKILL');
    }
  })();
  let finished = false;
  try {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    await pump;
    const code = await exited;
    finished = true;
    if (pumpError !== undefined) throw pumpError;
    if (spawnError) {
      const missing = (spawnError as NodeJS.ErrnoException).code === 'ENOENT';
      throw new KilnError(missing ? 'UNSUPPORTED' : 'ARCHIVE', missing ? `${what} needs the "${cmd}" command, which is not installed` : `${what}: ${spawnError.message}`);
    }
    if (code !== 0) throw new KilnError('ARCHIVE', `${what} failed (${cmd} exit ${code}): ${stderr.trim().split('\n').pop() ?? ''}`);
  } finally {
    if (!finished) {
      child.kill('SIGKILL');
      await pump;
    }
  }
}

export function zstdStream(src: ByteSource, level = DEFAULT_ZSTD_LEVEL): AsyncGenerator<Buffer> {
  if (!Number.isInteger(level) || level < 1 || level > 22) throw new KilnError('USAGE', `zstd compression level must be 1-22, got ${level}`);
  const args = ['-q', '-c', '-T0', `-${level}`];
  if (level > 19) args.unshift('--ultra');
  return pipeThrough('zstd', args, src, 'zstd compression');
}

export function compressStream(src: ByteSource, compression: Compression, level?: number): ByteSource {
  switch (compression) {
    case 'gzip':
      return gzipStream(src, level);
    case 'zstd':
      return zstdStream(src, level);
    case 'uncompressed':
      return src;
  }
}
