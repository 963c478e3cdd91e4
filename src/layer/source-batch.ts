import { constants } from 'node:fs';
import type * as Fs from 'node:fs';
import type { hash as Hash } from 'node:crypto';

/**
 * How a source file is opened: O_NOFOLLOW refuses one swapped for a symlink since it was listed,
 * O_NONBLOCK keeps one swapped for a FIFO from blocking the open (it changes nothing for a regular
 * file's reads). Node adds O_CLOEXEC to every descriptor it opens.
 */
export const SOURCE_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** Files up to this size are read with one synchronous read, straight into the layer's batch: cheaper than a stream when there are thousands. */
export const SMALL_FILE = 128 * 1024;

/**
 * A batch of small source files to read, packed: posting it to a worker copies one string and two
 * typed arrays, not an object per file.
 */
export interface ReadRequest {
  /** The files' paths, each ended by a NUL (no path holds one). */
  paths: string;
  /** Per file: size, then the dev and ino it was listed as (-1, -1: no check, as for the layer writer). */
  meta: Float64Array;
  /** Per file: 1 to hash the content too (sha256 hex). */
  hash: Uint8Array;
}

/** What a worker read: file i's bytes at the i-th running sum of the sizes, when `ok[i] === 1`; its sha256 in `hex` at 64 × i. */
export interface ReadResult {
  data: ArrayBuffer;
  ok: Uint8Array;
  /** 64 hex digits per file; zeros for a file not hashed. */
  hex: string;
}

/**
 * Reads a batch of small source files into one buffer: `reuse` when it has room, else a new one of
 * at least `room` bytes. A file that cannot be read exactly as listed (gone, replaced by a symlink
 * or another inode, grown, shrunk, unreadable) is marked not ok and left to the layer writer, which
 * reads it itself and fails with its own error: the batch is a shortcut, never a second set of rules.
 *
 * Self-contained on purpose, like compressBlock (fs, crypto's hash and the open flags come in as
 * arguments, no imports, no closures): the layer workers run this very function from its source text.
 */
export function readSources(fs: typeof Fs, hash: typeof Hash, flags: number, req: ReadRequest, reuse: ArrayBuffer | undefined, room: number): ReadResult {
  const paths = req.paths.split('\0');
  const n = req.hash.length;
  let total = 0;
  const offsets: number[] = [];
  for (let i = 0; i < n; i++) {
    offsets.push(total);
    total += req.meta[3 * i]!;
  }
  // one spare byte past the last file, for its end-of-file read
  // not zero-filled (filling it faulted in every page first): only the bytes of files read whole are handed on
  const data = reuse !== undefined && reuse.byteLength >= total + 1 ? reuse : Buffer.allocUnsafeSlow(Math.max(total + 1, room)).buffer;
  const out = Buffer.from(data);
  const readOne = (path: string, size: number, dev: number, ino: number, off: number): boolean => {
    let fd: number;
    try {
      fd = fs.openSync(path, flags);
    } catch {
      return false;
    }
    try {
      if (ino >= 0) {
        const st = fs.fstatSync(fd);
        if (!st.isFile() || st.ino !== ino || st.dev !== dev) return false;
      }
      // asks for one byte more than the size: coming back short with every byte in is the end of the file
      let got = 0;
      for (;;) {
        const want = size + 1 - got;
        const r = fs.readSync(fd, out, off + got, want, null);
        got += r;
        if (got > size) return false;
        if (r === 0) return got === size;
        if (got === size && r < want) return true;
      }
    } catch {
      return false;
    } finally {
      fs.closeSync(fd);
    }
  };
  const ok = new Uint8Array(n);
  const NONE = '0'.repeat(64);
  let hex = '';
  for (let i = 0; i < n; i++) {
    // a file that grew wrote one byte into the next one's room: the next is read after it
    const off = offsets[i]!;
    const size = req.meta[3 * i]!;
    ok[i] = readOne(paths[i]!, size, req.meta[3 * i + 1]!, req.meta[3 * i + 2]!, off) ? 1 : 0;
    // one-shot: a Hash object per file held its native context until the worker's rare collections (20 MB at 20,000 files)
    hex += ok[i] === 1 && req.hash[i] === 1 ? hash('sha256', out.subarray(off, off + size), 'hex') : NONE;
  }
  return { data, ok, hex };
}
