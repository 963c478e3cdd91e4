import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { openUncompressed } from './decompress.js';
import { BLOCK_SIZE, TypeFlag, decodeHeader, isZeroBlock, mergePax, paddingFor, type TarHeader } from './tar-format.js';

/** One entry of a tar being read. `body` must be consumed (or ignored) before asking for the next entry. */
export interface TarEntry {
  header: TarHeader;
  /** The entry's data (regular files), streamed; anything left unread is skipped. */
  body: AsyncIterable<Buffer>;
}

/** Largest PAX or GNU long-name record accepted: real ones are a few KiB; this bounds memory on hostile input. */
export const MAX_META = 16 << 20;

async function* toAsync(src: Iterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  yield* src;
}

/** Pulls exact byte counts out of a chunked stream without concatenating more than needed. */
class ByteReader {
  private readonly it: AsyncIterator<Uint8Array>;
  private cur: Buffer = Buffer.alloc(0);
  private off = 0;
  private ended = false;

  constructor(src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>) {
    this.it = Symbol.asyncIterator in src ? src[Symbol.asyncIterator]() : toAsync(src)[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    while (this.off >= this.cur.length) {
      if (this.ended) return false;
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        return false;
      }
      const v = r.value;
      this.cur = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.length);
      this.off = 0;
    }
    return true;
  }

  /** Exactly n bytes, or undefined at a clean end of input (nothing read); throws on a short read. */
  async read(n: number): Promise<Buffer | undefined> {
    if (!(await this.fill())) return undefined;
    if (this.cur.length - this.off >= n) {
      const b = this.cur.subarray(this.off, this.off + n);
      this.off += n;
      return b;
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      if (!(await this.fill())) throw new KilnError('ARCHIVE', 'unexpected end of tar stream');
      const take = Math.min(n - got, this.cur.length - this.off);
      this.cur.copy(out, got, this.off, this.off + take);
      this.off += take;
      got += take;
    }
    return out;
  }

  /** Up to n bytes, as they come. */
  async *chunks(n: number, onRead: (k: number) => void): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (!(await this.fill())) throw new KilnError('ARCHIVE', 'unexpected end of tar stream');
      const take = Math.min(left, this.cur.length - this.off);
      const b = this.cur.subarray(this.off, this.off + take);
      this.off += take;
      left -= take;
      onRead(take);
      yield b;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.chunks(n, () => {})) {
      // discard
    }
  }

  /** Reads what is left (the zero blocks after the end marker), so a hash of the stream covers every byte. */
  async drain(): Promise<void> {
    while (await this.fill()) this.off = this.cur.length;
  }
}

/**
 * Reads a tar stream entry by entry: ustar, PAX (per-entry and global) and
 * GNU long names, base-256 numbers. PAX values stay bytes, so binary xattrs
 * arrive exactly as written. The input is read to its end.
 */
export async function* readTar(src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const r = new ByteReader(src);
  let globalPax: Record<string, Buffer> = {};
  let pax: Record<string, Buffer> | undefined;
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  for (;;) {
    const block = await r.read(BLOCK_SIZE);
    if (!block) break; // end of input without the end marker: accepted, as GNU tar does
    if (isZeroBlock(block)) break;
    const typeflag = block[156]!;
    if (typeflag === TypeFlag.paxHeader || typeflag === TypeFlag.paxGlobal || typeflag === TypeFlag.gnuLongName || typeflag === TypeFlag.gnuLongLink) {
      const h = decodeHeader(block, {});
      if (h.size > MAX_META) throw new KilnError('ARCHIVE', `tar extension header of ${h.size} bytes is too large`);
      const body = h.size > 0 ? (await r.read(h.size))! : Buffer.alloc(0);
      await r.skip(paddingFor(h.size));
      // bounded together: the global records count against every entry's own, and the reverse
      if (typeflag === TypeFlag.paxHeader) pax = mergePax(pax, body, globalPax);
      else if (typeflag === TypeFlag.paxGlobal) globalPax = mergePax(globalPax, body, pax);
      else {
        const end = body.indexOf(0);
        const value = Buffer.from(end === -1 ? body : body.subarray(0, end));
        if (typeflag === TypeFlag.gnuLongName) longName = value;
        else longLink = value;
      }
      continue;
    }
    const header = decodeHeader(block, { ...globalPax, ...pax }, longName, longLink);
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    let left = header.size;
    yield { header, body: r.chunks(header.size, (k) => (left -= k)) };
    await r.skip(left + paddingFor(header.size));
  }
  await r.drain();
}

/** The entries of a layer blob (gzip, zstd or plain tar): for exports, COPY --from an image, inspection. */
export function readLayer(compressed: Readable | AsyncIterable<Uint8Array>, mediaType: string): AsyncGenerator<TarEntry> {
  return readTar(openUncompressed(compressed, mediaType));
}
