import { closeSync, createReadStream, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { comparePaths } from './path-order.js';
import { END_OF_ARCHIVE, encodeHeader, paddingFor } from './tar-format.js';
import type { LayerEntry } from './types.js';

export interface TarWriteOptions {
  /** Clamp every mtime to min(mtime, sourceDateEpoch). */
  sourceDateEpoch?: number;
}

/** Small headers and files are batched into chunks of about this size so downstream stages see few, large writes. */
const BATCH = 256 * 1024;
/** Files up to this size are read with one synchronous read: cheaper than a stream when there are thousands. */
const SMALL_FILE = 256 * 1024;

const ZEROS = Buffer.alloc(512);

export function validateEntryPath(p: string): void {
  if (p === '' || p.startsWith('/') || p.endsWith('/') || p.includes('//') || p.includes('\0')) {
    throw new KilnError('ARCHIVE', `invalid layer entry path "${p}"`);
  }
  for (const c of p.split('/')) {
    if (c === '.' || c === '..') throw new KilnError('ARCHIVE', `invalid layer entry path "${p}" (contains "${c}")`);
  }
}

function readSmallFile(path: string, size: number, entryPath: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(size + 1);
    let n = 0;
    // Read one byte past `size` to notice a file that grew since it was listed.
    while (n < size + 1) {
      const r = readSync(fd, buf, n, size + 1 - n, null);
      if (r === 0) break;
      n += r;
    }
    if (n !== size) throw sizeChanged(entryPath, size, n > size ? `more than ${size}` : String(n));
    return buf.subarray(0, size);
  } finally {
    closeSync(fd);
  }
}

function sizeChanged(path: string, want: number, got: string): KilnError {
  return new KilnError('ARCHIVE', `file "${path}" changed while writing the layer (expected ${want} bytes, got ${got})`);
}

/**
 * Turns a sorted sequence of entries into tar bytes. Content is pulled one
 * file at a time as the consumer asks for more, so memory stays bounded by
 * the batch size whatever the layer size.
 */
export async function* tarStream(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, opts: TarWriteOptions = {}): AsyncGenerator<Buffer> {
  const epoch = opts.sourceDateEpoch;
  let pending: Buffer[] = [];
  let pendingLen = 0;
  const push = (b: Buffer): void => {
    pending.push(b);
    pendingLen += b.length;
  };
  const take = (): Buffer => {
    const out = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen);
    pending = [];
    pendingLen = 0;
    return out;
  };

  let prev: string | undefined;
  for await (const e of entries) {
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

    const mtime = epoch !== undefined && e.mtime > epoch ? epoch : e.mtime;
    push(encodeHeader(e, mtime));

    if (e.type === 'file') {
      const size = e.size ?? 0;
      if (!Number.isSafeInteger(size) || size < 0) throw new KilnError('ARCHIVE', `layer entry "${e.path}" has invalid size ${size}`);
      if (size > 0 || e.open) {
        if (e.sourcePath !== undefined && size <= SMALL_FILE) {
          push(readSmallFile(e.sourcePath, size, e.path));
        } else {
          const stream: Readable | undefined = e.sourcePath !== undefined ? createReadStream(e.sourcePath, { highWaterMark: 1 << 20 }) : e.open?.();
          if (!stream) throw new KilnError('ARCHIVE', `file "${e.path}" has no content source`);
          let n = 0;
          try {
            for await (const chunk of stream as AsyncIterable<Buffer>) {
              n += chunk.length;
              if (n > size) throw sizeChanged(e.path, size, `more than ${size}`);
              if (chunk.length >= BATCH) {
                if (pendingLen > 0) yield take();
                yield chunk;
              } else {
                push(chunk);
                if (pendingLen >= BATCH) yield take();
              }
            }
          } finally {
            stream.destroy();
          }
          if (n !== size) throw sizeChanged(e.path, size, String(n));
        }
        const pad = paddingFor(size);
        if (pad > 0) push(ZEROS.subarray(0, pad));
      }
    }
    if (pendingLen >= BATCH) yield take();
  }
  push(END_OF_ARCHIVE);
  yield take();
}
