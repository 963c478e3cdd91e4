import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { comparePaths } from './path-order.js';
import { readAhead } from './read-ahead.js';
import { SMALL_FILE, SOURCE_FLAGS } from './source-batch.js';
import { BLOCK_SIZE, END_OF_ARCHIVE, encodeHeader, encodeHeaderInto, paddingFor } from './tar-format.js';
import type { LayerEntry, SourceInode } from './types.js';

export interface TarWriteOptions {
  /** Clamp every mtime to min(mtime, sourceDateEpoch). */
  sourceDateEpoch?: number | undefined;
  /**
   * The consumer is done with a chunk once it asks for the next one (it copies or hashes it at
   * once, as the gzip block cutter does). The writer then reuses its buffers: a layer of any size
   * is written through the same few megabytes instead of a fresh 1 MiB buffer per read, which
   * V8 frees only at its next collection and which made the peak memory grow with the layer.
   */
  reuseChunks?: boolean | undefined;
  /** Small source files the layer shows before the rest are read ahead (`readAhead`); its default unless a test asks for fewer. */
  readAheadAfter?: number | undefined;
}

/**
 * Headers and small files are written straight into one batch buffer, handed
 * downstream once it holds about BATCH bytes: few, large chunks for the
 * compressor and the store, and no allocation or copy per entry.
 */
const BATCH = 256 * 1024;
const BATCH_CAP = 2 * BATCH;

export function validateEntryPath(p: string): void {
  if (p === '' || p.startsWith('/') || p.endsWith('/') || p.includes('//') || p.includes('\0')) {
    throw new KilnError('ARCHIVE', `invalid layer entry path "${p}"`);
  }
  if (p.startsWith('.') || p.includes('/.')) {
    for (const c of p.split('/')) {
      if (c === '.' || c === '..') throw new KilnError('ARCHIVE', `invalid layer entry path "${p}" (contains "${c}")`);
    }
  }
}

/**
 * Opens a listed source file. With `inode` (the file as it was listed), the descriptor must name
 * that very inode: a file, or a directory above it, swapped for a symlink or another file between
 * the listing and this open (a race against a context another user can write) is refused with
 * `replaced(by)`'s error instead of reading whatever the new path reaches — a host file the builder
 * can read. The layer writer, the context hasher and ADD's archive reads all open sources here.
 */
export function openListed(path: string, inode: SourceInode | undefined, replaced: (by: string) => KilnError): number {
  let fd: number;
  try {
    fd = openSync(path, SOURCE_FLAGS);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw replaced('a symlink');
    throw e;
  }
  if (inode !== undefined) {
    const st = fstatSync(fd);
    // the type too: a freed inode number is reused at once, so a FIFO made in the file's place can carry it
    if (!st.isFile() || st.ino !== inode.ino || st.dev !== inode.dev) {
      closeSync(fd);
      throw replaced(st.isFile() ? 'another file' : 'something that is not a regular file');
    }
  }
  return fd;
}

/** An entry's source file, for the layer. */
function openSource(path: string, entryPath: string, inode: SourceInode | undefined): number {
  return openListed(path, inode, (by) => replaced(entryPath, by));
}

function replaced(entryPath: string, by: string): KilnError {
  return new KilnError('ARCHIVE', `file "${entryPath}" was replaced by ${by} while writing the layer; nothing was read from it`);
}

/**
 * Reads exactly `size` bytes of `path` into `out` at `off`; `out` has room for one byte more.
 * The first read asks for that extra byte: coming back with `size` bytes, short, it has met the
 * end of the file, so a small file costs one read, not a second one to see that it did not grow.
 */
function readSmallFile(path: string, size: number, entryPath: string, inode: SourceInode | undefined, out: Buffer, off: number): void {
  const fd = openSource(path, entryPath, inode);
  try {
    let n = 0;
    for (;;) {
      const want = size + 1 - n;
      const r = readSource(fd, out, off + n, want, entryPath);
      n += r;
      if (n > size) throw sizeChanged(entryPath, size, `more than ${size}`);
      if (r === 0) {
        if (n < size) throw sizeChanged(entryPath, size, String(n));
        break;
      }
      // short with every byte in: the end of the file; short before that, read on (to 0 if it shrank)
      if (n === size && r < want) break;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * One synchronous read of a source file. A read that fails (EAGAIN from a FIFO with a silent
 * writer, EIO) is an ARCHIVE error naming the entry, for small and big files alike.
 */
function readSource(fd: number, into: Buffer, off: number, len: number, entryPath: string): number {
  try {
    return readSync(fd, into, off, len, null);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KilnError('ARCHIVE', `file "${entryPath}" could not be read while writing the layer (${code ?? (e as Error).message})`, { cause: e });
  }
}

function sizeChanged(path: string, want: number, got: string): KilnError {
  return new KilnError('ARCHIVE', `file "${path}" changed while writing the layer (expected ${want} bytes, got ${got})`);
}

/** Reads of a big file's content. */
const READ_CHUNK = 1 << 20;

/**
 * A file's bytes in chunks of READ_CHUNK: read into `reuse` over and over when given (the caller
 * has finished with each chunk when it asks for the next), else each into a buffer of its own;
 * closes `fd` when done or abandoned.
 *
 * The reads are synchronous, like readSmallFile's: the source is a regular file on a local disk
 * (opened O_NONBLOCK, so one swapped for a FIFO fails with EAGAIN instead of blocking), and a
 * thread-pool read costs the main thread a hand-off and an event-loop turn per MiB, which on the
 * layer's critical path cost more than the copy itself. Writing big-layer's 500 MB RUN layer took
 * 0.89x the time (1.51 s against 1.69 s, medians of 10 alternated cold builds).
 */
async function* readChunks(fd: number, reuse: Buffer | undefined, entryPath: string): AsyncGenerator<Buffer> {
  try {
    for (;;) {
      const into = reuse ?? Buffer.allocUnsafe(READ_CHUNK);
      const n = readSource(fd, into, 0, into.length, entryPath);
      if (n === 0) return;
      yield into.subarray(0, n);
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Turns a sorted sequence of entries into tar bytes. Content is pulled one
 * file at a time as the consumer asks for more, so memory stays bounded by
 * the batch size whatever the layer size. Chunks handed out are never
 * reused by the writer unless `reuseChunks` says the consumer allows it.
 * In a layer of many small source files, the files are read a few batches
 * ahead by a layer worker (see readAhead); the bytes are the same.
 */
export async function* tarStream(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, opts: TarWriteOptions = {}): AsyncGenerator<Buffer> {
  const epoch = opts.sourceDateEpoch;
  const reuse = opts.reuseChunks === true;
  let buf = Buffer.allocUnsafe(BATCH_CAP);
  let len = 0;
  const take = (): Buffer => {
    const out = buf.subarray(0, len);
    // reused: the consumer has finished with `out` by the time the writer runs again
    if (!reuse) buf = Buffer.allocUnsafe(BATCH_CAP);
    len = 0;
    return out;
  };
  let readBuf: Buffer | undefined;
  const zero = (n: number): void => {
    buf.fill(0, len, len + n);
    len += n;
  };

  let prev: string | undefined;
  for await (const ahead of readAhead(entries, opts.readAheadAfter)) {
    const e = ahead.entry;
    validateEntryPath(e.path);
    if (prev !== undefined) {
      const c = comparePaths(prev, e.path);
      if (c === 0) throw new KilnError('ARCHIVE', `duplicate layer entry "${e.path}"`);
      if (c > 0) throw new KilnError('ARCHIVE', `layer entries out of order: "${e.path}" after "${prev}"`);
    }
    prev = e.path;
    if (e.type === 'hardlink') {
      if (!e.linkname) throw new KilnError('ARCHIVE', `hardlink "${e.path}" has no target`);
      validateEntryPath(e.linkname);
      if (comparePaths(e.linkname, e.path) >= 0) throw new KilnError('ARCHIVE', `hardlink "${e.path}" points at "${e.linkname}", which is not an earlier entry`);
    }
    if (e.type === 'symlink' && e.linkname === undefined) throw new KilnError('ARCHIVE', `symlink "${e.path}" has no target`);
    if (!Number.isInteger(e.uid) || !Number.isInteger(e.gid) || e.uid < 0 || e.gid < 0) {
      throw new KilnError('ARCHIVE', `layer entry "${e.path}" has invalid owner ${e.uid}:${e.gid}`);
    }
    const size = e.type === 'file' ? (e.size ?? 0) : 0;
    if (!Number.isSafeInteger(size) || size < 0) throw new KilnError('ARCHIVE', `layer entry "${e.path}" has invalid size ${size}`);

    const mtime = epoch !== undefined && e.mtime > epoch ? epoch : e.mtime;
    if (len + BLOCK_SIZE > BATCH_CAP) yield take();
    if (encodeHeaderInto(e, mtime, buf, len)) {
      len += BLOCK_SIZE;
    } else {
      const h = encodeHeader(e, mtime);
      if (len + h.length > BATCH_CAP) yield take();
      if (h.length > BATCH_CAP) yield h;
      else len += h.copy(buf, len);
    }

    if (e.type === 'file' && (size > 0 || e.open)) {
      const pad = paddingFor(size);
      if (e.sourcePath !== undefined && size <= SMALL_FILE) {
        // room for the content, its padding and the one byte readSmallFile asks for beyond it
        if (len + size + Math.max(pad, 1) > BATCH_CAP) yield take();
        const { batch, index } = ahead;
        if (batch !== undefined && index >= 0 && batch.ok[index] === 1) {
          const at = batch.offsets[index]!;
          batch.data.copy(buf, len, at, at + size);
          e.onContentDigest?.(batch.hex.slice(64 * index, 64 * index + 64), e);
        } else {
          // not read ahead, or the worker could not read it as listed: read here, with the writer's own checks and errors
          readSmallFile(e.sourcePath, size, e.path, e.sourceInode, buf, len);
          e.onContentDigest?.(createHash('sha256').update(buf.subarray(len, len + size)).digest('hex'), e);
        }
        len += size;
      } else {
        const digest = e.onContentDigest ? createHash('sha256') : undefined;
        let chunks: AsyncIterable<Buffer> & { destroy?: () => void };
        if (e.sourcePath !== undefined) {
          if (reuse) readBuf ??= Buffer.allocUnsafe(READ_CHUNK);
          chunks = readChunks(openSource(e.sourcePath, e.path, e.sourceInode), readBuf, e.path);
        } else {
          const stream: Readable | undefined = e.open?.();
          if (!stream) throw new KilnError('ARCHIVE', `file "${e.path}" has no content source`);
          chunks = stream as Readable & AsyncIterable<Buffer>;
        }
        let n = 0;
        try {
          for await (const chunk of chunks) {
            n += chunk.length;
            if (n > size) throw sizeChanged(e.path, size, `more than ${size}`);
            digest?.update(chunk);
            if (chunk.length >= BATCH) {
              // Big chunks pass through as they are: no copy.
              if (len > 0) yield take();
              yield chunk;
            } else {
              if (len + chunk.length > BATCH_CAP) yield take();
              len += chunk.copy(buf, len);
            }
          }
        } finally {
          chunks.destroy?.();
        }
        if (n !== size) throw sizeChanged(e.path, size, String(n));
        if (digest) e.onContentDigest?.(digest.digest('hex'), e);
      }
      if (len + pad > BATCH_CAP) yield take();
      zero(pad);
    }
    if (len >= BATCH) yield take();
  }
  if (len + END_OF_ARCHIVE.length > BATCH_CAP) yield take();
  zero(END_OF_ARCHIVE.length);
  yield take();
}
