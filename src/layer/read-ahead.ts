import * as fs from 'node:fs';
import { hash } from 'node:crypto';
import { type ReadRequest, type ReadResult, readSources, SMALL_FILE, SOURCE_FLAGS } from './source-batch.js';
import type { LayerEntry } from './types.js';
import { layerWorkers } from './worker-pool.js';

/**
 * Small source files a layer must have shown before the rest are read ahead. A thread's start costs
 * about as much CPU as this thread reading a couple of thousand small files (4 system calls each),
 * so a smaller layer starts none: a 2,000-file COPY took 0.81× the time without the worker (see
 * the README's *Design changes measured A/B*). Once it starts, this thread reads on until it is ready.
 */
const READ_AHEAD_AFTER = 2048;
/** One batch: this many small files or this many bytes of them, whichever comes first. */
const BATCH_FILES = 256;
const BATCH_BYTES = 512 * 1024;
/** Entries of other kinds (directories, links, big files) a batch may span as well before it is sent. */
const BATCH_ENTRIES = 4 * BATCH_FILES;
/** Batches gathered ahead of the one being written, at most: what this thread holds while the worker reads. */
const MAX_PENDING = 4;
/** Batches queued in the worker, at most: one it reads, one it goes on to without waiting for this thread. */
const WORKER_QUEUE = 2;
/** A batch buffer's size: the byte limit plus one file of the most read whole and the spare byte, so one buffer fits any batch. */
const BATCH_ROOM = BATCH_BYTES + SMALL_FILE + 1;

/** A source file a batch may read: a listed regular file with content, small enough to be read whole. */
function isReadAhead(e: LayerEntry): boolean {
  return e.type === 'file' && e.sourcePath !== undefined && e.size !== undefined && e.size > 0 && e.size <= SMALL_FILE && Number.isSafeInteger(e.size);
}

/** A batch as the writer takes it: file i's bytes in `data` at `offsets[i]` when `ok[i] === 1`, its sha256 at `hex[64 i]`. */
export interface ReadBatch {
  data: Buffer;
  /** data's own buffer, kept for a later batch once this one is written */
  buffer: ArrayBuffer;
  offsets: number[];
  ok: Uint8Array;
  hex: string;
}

/**
 * The entry to write and, for a small source file read ahead, where its bytes are: `batch.data` at
 * `batch.offsets[index]`, when `batch.ok[index] === 1`. One object reused for every entry (the
 * writer reads it before it asks for the next): not two more objects per file.
 */
export interface Ahead {
  entry: LayerEntry;
  batch: ReadBatch | undefined;
  /** The entry's place in `batch`, or -1. */
  index: number;
}

/** A batch gathered from the entries, not yet read. */
interface Gathered {
  run: LayerEntry[];
  req: ReadRequest;
  offsets: number[];
}

/** A batch on its way to the writer: read here, or the worker's `seq`-th (read once the worker's count reaches it). */
interface Pending {
  run: LayerEntry[];
  read: Promise<ReadBatch | undefined>;
  seq: number;
}

/**
 * Passes the entries through in order. Once the layer has shown READ_AHEAD_AFTER small source files,
 * it gathers them in batches and reads each batch ahead of the writer, on a layer worker when the
 * worker is free and on this thread when it is still busy with the batch before: the reads (open,
 * fstat, read, close, and the sha256 an entry asks for) of a many-file COPY run on both cores, this
 * thread's share between pulling entries — which runs the tree walk that lists them — and writing
 * them, and neither thread waits for the other while there is work. On one thread those four system
 * calls per file were most of a 100,000-file COPY; handing every batch to the worker left this
 * thread waiting for it a quarter of the time. A file that could not be read as listed is left to
 * the writer, which reads it with its own checks and errors.
 */
export async function* readAhead(entries: AsyncIterable<LayerEntry> | Iterable<LayerEntry>, after = READ_AHEAD_AFTER): AsyncGenerator<Ahead> {
  const it = Symbol.asyncIterator in entries ? entries[Symbol.asyncIterator]() : entries[Symbol.iterator]();
  let ended = false;
  try {
    // entry is set before each yield
    const out: Ahead = { entry: undefined as unknown as LayerEntry, batch: undefined, index: -1 };
    let seen = 0;
    for (;;) {
      const r = await it.next();
      if (r.done === true) {
        ended = true;
        break;
      }
      out.entry = r.value;
      yield out;
      if (isReadAhead(r.value) && ++seen >= after) break;
    }
    if (ended) return;

    // buffers of batches written, carried back for later batches (a new one per batch piled up
    // between collections)
    const spare: ArrayBuffer[] = [];
    const sent: Pending[] = [];
    const gather = async (): Promise<Gathered | undefined> => {
      const run: LayerEntry[] = [];
      let paths = '';
      const meta: number[] = [];
      const hash: number[] = [];
      const offsets: number[] = [];
      let bytes = 0;
      while (hash.length < BATCH_FILES && bytes < BATCH_BYTES && run.length < BATCH_ENTRIES) {
        const r = await it.next();
        if (r.done === true) {
          ended = true;
          break;
        }
        const e = r.value;
        run.push(e);
        if (isReadAhead(e)) {
          paths += `${e.sourcePath!}\0`;
          meta.push(e.size!, e.sourceInode?.dev ?? -1, e.sourceInode?.ino ?? -1);
          hash.push(e.onContentDigest !== undefined ? 1 : 0);
          offsets.push(bytes);
          bytes += e.size!;
        }
      }
      return run.length === 0 ? undefined : { run, req: { paths, meta: Float64Array.from(meta), hash: Uint8Array.from(hash) }, offsets };
    };
    const asBatch = (g: Gathered, r: ReadResult): ReadBatch => ({ data: Buffer.from(r.data), buffer: r.data, offsets: g.offsets, ok: r.ok, hex: r.hex });
    // batches posted to the worker, and (on memory the worker writes) how many of them it has read
    let posted = 0;
    const done = new Int32Array(new SharedArrayBuffer(4));
    const ready = (p: Pending): boolean => p.seq <= Atomics.load(done, 0);
    async function* written(): AsyncGenerator<Ahead> {
      const p = sent.shift()!;
      const batch = await p.read;
      let i = 0;
      for (const e of p.run) {
        out.entry = e;
        out.batch = batch;
        out.index = isReadAhead(e) ? i++ : -1;
        yield out;
      }
      // every file of the batch is in the layer by now
      if (batch !== undefined && batch.buffer.byteLength >= BATCH_ROOM && spare.length <= MAX_PENDING) spare.push(batch.buffer);
    }

    while (!ended || sent.length > 0) {
      const g = ended ? undefined : await gather();
      if (g !== undefined) {
        const p: Pending = { run: g.run, read: Promise.resolve(undefined), seq: 0 };
        if (g.req.hash.length === 0) {
          // nothing to read
        } else if (posted - Atomics.load(done, 0) >= WORKER_QUEUE || !layerWorkers().readerReady()) {
          // the worker is still busy with the batches before, or still starting: read this one here instead of waiting
          p.read = Promise.resolve(asBatch(g, readSources(fs, hash, SOURCE_FLAGS, g.req, spare.pop(), BATCH_ROOM)));
        } else {
          p.seq = ++posted;
          p.read = layerWorkers().readFiles(g.req, BATCH_ROOM, spare.pop(), done).then((r) => r && asBatch(g, r));
        }
        sent.push(p);
      }
      // write what is ready; wait only when MAX_PENDING batches are held or nothing is left to gather
      while (sent.length > 0 && (ready(sent[0]!) || sent.length >= MAX_PENDING || ended)) yield* written();
    }
    layerWorkers().retireReader();
  } finally {
    // stopped early (the writer failed, or its reader gave up): close the entries' source, as for-await would
    if (!ended) await it.return?.();
  }
}
