import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { KilnError, isKilnError } from '../errors/index.js';
import { digestOfHash, type Digest } from '../image/digest.js';
import { layerCompression } from '../image/media-types.js';
import { pipeThrough } from './compress.js';

/**
 * The one decompressor. Layers, `kiln load` archives, ADD archives and tar
 * build contexts are all decoded here, by one rule: the first bytes decide
 * (registries and old tools mislabel layers), and a media type only speaks
 * when the bytes are too few to tell.
 */

/** What a layer may be compressed with (OCI: gzip or zstd). */
export type DetectedCompression = 'gzip' | 'zstd' | 'none';
/** What an archive ADD unpacks or a tar context may be compressed with (Docker's set). */
export type ArchiveCompression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';

const MAGIC: ReadonlyArray<[Exclude<ArchiveCompression, 'none'>, readonly number[]]> = [
  ['gzip', [0x1f, 0x8b]],
  ['bzip2', [0x42, 0x5a, 0x68]], // "BZh"
  ['xz', [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]],
  ['zstd', [0x28, 0xb5, 0x2f, 0xfd]],
];

/** The compression an archive's first bytes announce ('none' when no magic matches). */
export function sniffArchiveCompression(head: Uint8Array): ArchiveCompression {
  for (const [kind, magic] of MAGIC) if (head.length >= magic.length && magic.every((b, i) => head[i] === b)) return kind;
  return 'none';
}

/** A layer's compression told by the first bytes, when they say anything (bzip2 and xz are not layer formats). */
export function sniffCompression(head: Uint8Array): DetectedCompression | undefined {
  const kind = sniffArchiveCompression(head);
  if (kind === 'gzip' || kind === 'zstd') return kind;
  if (head.length >= 4) return 'none';
  return undefined;
}

/** Decodes `src` compressed with `kind`; errors name the format. */
async function* decoded(src: AsyncIterable<Uint8Array>, kind: ArchiveCompression): AsyncGenerator<Buffer> {
  try {
    if (kind === 'gzip') {
      // Node's gunzip reads concatenated members (parallel-gzip layers) as one stream.
      const out = pipeline(Readable.from(src), createGunzip({ chunkSize: 256 * 1024 }), () => {});
      yield* out as AsyncIterable<Buffer>;
    } else if (kind !== 'none') {
      // Node 20 has no zstd, bzip2 or xz decoder: the system tools are the dependable ones.
      yield* pipeThrough(kind, ['-dc', '-q'], src, `${kind} decompression`);
    } else {
      for await (const c of src) yield Buffer.from(c.buffer, c.byteOffset, c.length);
    }
  } catch (e) {
    if (isKilnError(e)) throw e;
    throw new KilnError('ARCHIVE', `cannot decompress (${kind}): ${(e as Error).message}`, { cause: e });
  }
}

/** Reads enough of `src` to sniff it, then decodes it as the bytes (or else `hint`) say. */
async function* sniffed(src: AsyncIterable<Uint8Array>, hint: (head: Buffer) => ArchiveCompression): AsyncGenerator<Buffer> {
  const it = src[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLen = 0;
  let done = false;
  while (headLen < 6) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head.push(Buffer.from(r.value));
    headLen += r.value.length;
  }
  const first = Buffer.concat(head);
  async function* rest(): AsyncGenerator<Buffer> {
    if (first.length > 0) yield first;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
    }
  }
  yield* decoded(rest(), hint(first));
}

/** The tar bytes of a layer blob (or image archive), decompressed as its first bytes (or else its media type) say. */
export function openUncompressed(compressed: Readable | AsyncIterable<Uint8Array>, mediaType: string): Readable {
  return Readable.from(sniffed(compressed, (head) => sniffCompression(head) ?? layerCompression(mediaType)), { objectMode: false });
}

/**
 * The diffID a layer blob really has: the sha256 of its decompressed bytes,
 * in one streaming pass (memory flat in the layer size). For checking a
 * diffID that someone else claimed for the blob.
 */
export async function uncompressedDigest(compressed: Readable | AsyncIterable<Uint8Array>, mediaType: string): Promise<Digest> {
  const hash = createHash('sha256');
  for await (const chunk of openUncompressed(compressed, mediaType)) hash.update(chunk as Buffer);
  return digestOfHash(hash);
}

/** An archive (ADD source, tar context) decompressed as its first bytes say: gzip, bzip2, xz, zstd or plain. */
export function openArchive(src: Readable | AsyncIterable<Uint8Array>): Readable {
  return Readable.from(sniffed(src, sniffArchiveCompression), { objectMode: false });
}

/** Decodes a stream whose compression is already known (sniffed from the same bytes). */
export function decodeArchive(src: Readable | AsyncIterable<Uint8Array>, kind: ArchiveCompression): Readable {
  return Readable.from(decoded(src, kind), { objectMode: false });
}

/**
 * The most bytes a compressed archive that kiln unpacks itself (an ADD archive, a tar context from
 * stdin or a URL) may expand to: 1,032 times its compressed size, gzip's own ceiling, at least
 * 64 MiB and at most 64 GiB. gzip cannot go past that ratio; zstd, xz and bzip2 can go much further
 * (a 64 KB zstd stream of 2 GiB of zeros, a 528 KB one of 16 GiB), so without a bound a few
 * kilobytes could fill the disk.
 */
export const EXPANSION_RATIO = 1032;
export const MIN_EXPANDED_BYTES = 64 * 1024 ** 2;
export const MAX_EXPANDED_BYTES = 64 * 1024 ** 3;

export function maxExpandedBytes(compressedBytes: number): number {
  return Math.min(MAX_EXPANDED_BYTES, Math.max(MIN_EXPANDED_BYTES, compressedBytes * EXPANSION_RATIO));
}

function expansionError(label: string, bound: number): KilnError {
  return new KilnError('ARCHIVE', `cannot unpack ${label}: it expands past ${bound} bytes, the most kiln unpacks from an archive of its size (${EXPANSION_RATIO} times the compressed size, at least ${MIN_EXPANDED_BYTES / 1024 ** 2} MiB, at most ${MAX_EXPANDED_BYTES / 1024 ** 3} GiB)`);
}

/**
 * `src` (the decompressed bytes of an input of `compressedBytes`) refused once it passes the bound
 * for that size. An input that was not compressed at all comes out as large as it went in, which
 * is never refused.
 */
export async function* boundedExpansion(src: AsyncIterable<Uint8Array>, compressedBytes: number, label: string): AsyncGenerator<Uint8Array> {
  const bound = Math.max(compressedBytes, maxExpandedBytes(compressedBytes));
  let n = 0;
  for await (const chunk of src) {
    n += chunk.length;
    if (n > bound) throw expansionError(label, bound);
    yield chunk;
  }
}

/**
 * Decodes the archive open as `inFd` into the new file `out`, for ADD's archive tree, which is read
 * from a file: the system's tool for the compression (gzip too, so a big archive is never held in
 * memory), stopped by the kernel once its output passes maxExpandedBytes (RLIMIT_FSIZE, set by the
 * shell for the decoder alone: SIGXFSZ on the write past it), and killed when `signal` aborts, so
 * Ctrl-C or SIGTERM stop an ADD of a big archive at once. Errors name `label`.
 */
export async function decodeArchiveFile(inFd: number, compression: Exclude<ArchiveCompression, 'none'>, out: string, label: string, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const tool = compression;
  const bound = maxExpandedBytes(fstatSync(inFd).size);
  const outFd = openSync(out, 'wx', 0o600);
  try {
    const child = spawn('/bin/sh', ['-c', 'ulimit -f "$1" && exec "$2" -dc', 'sh', String(Math.ceil(bound / 512)), tool], { stdio: [inFd, outFd, 'pipe'] });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    const kill = (): void => {
      child.kill('SIGKILL');
    };
    signal?.addEventListener('abort', kill, { once: true });
    try {
      const { code, sig } = await new Promise<{ code: number | null; sig: NodeJS.Signals | null }>((resolve, reject) => {
        child.once('error', (e) => reject(new KilnError('ARCHIVE', `cannot run ${tool} to unpack ${label}: ${e.message}`)));
        child.once('close', (c, s) => resolve({ code: c, sig: s }));
      });
      signal?.throwIfAborted();
      if (sig === 'SIGXFSZ') throw expansionError(label, bound);
      if (code !== 0) throw new KilnError('ARCHIVE', `cannot unpack ${label}: ${tool}: ${stderr.trim().split('\n').pop() || `exit ${code ?? sig}`}`);
    } finally {
      signal?.removeEventListener('abort', kill);
    }
  } finally {
    closeSync(outFd);
  }
}
