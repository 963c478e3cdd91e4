import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { KilnError } from '../errors/index.js';
import { compressBlock } from './gzip-block.js';
import { type ReadRequest, type ReadResult, readSources, SOURCE_FLAGS } from './source-batch.js';
import { trimFreedMemory } from '../sys/index.js';

/**
 * The workers' program: gzip blocks and batches of small source files. It is evaluated from source
 * (not loaded from a file) because the same code must run from `dist/`, from the bundle and from
 * the TypeScript sources under vitest, where no compiled worker file exists next to this module.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
const fs = require('node:fs');
const { hash } = require('node:crypto');
const compressBlock = ${compressBlock.toString()};
const readSources = ${readSources.toString()};
parentPort.on('message', (m) => {
  try {
    if (m.req !== undefined) {
      let r;
      try {
        r = readSources(fs, hash, ${SOURCE_FLAGS}, m.req, m.reuse, m.room);
      } finally {
        // counted before the answer is posted (the main thread sees it without an event-loop turn), and counted if it failed
        Atomics.add(new Int32Array(m.done), 0, 1);
      }
      parentPort.postMessage({ id: m.id, read: r }, [r.data]);
      return;
    }
    const out = compressBlock(zlib, new Uint8Array(m.data), m.level);
    // Hand the output's own buffer over without copying, unless it is a slice of Node's shared pool.
    const own = out.buffer.byteLength > Buffer.poolSize;
    const res = own ? out : Uint8Array.prototype.slice.call(out);
    parentPort.postMessage({ id: m.id, out: res.buffer, off: res.byteOffset, len: res.length, input: m.data }, [res.buffer, m.data]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String(e && e.message || e) });
  }
});
// on shared memory first: the main thread sees it without an event-loop turn, which a busy layer writer seldom takes
Atomics.store(new Int32Array(workerData.ready), 0, 1);
parentPort.postMessage({ ready: true });
`;

/** A compressed block, and the input's buffer handed back for reuse. */
export interface CompressedBlock {
  out: Buffer;
  input: ArrayBuffer;
}

/** What a worker answers: a compressed block, a batch read, or the error that stopped either. */
interface Reply {
  id: number;
  out?: ArrayBuffer;
  off?: number;
  len?: number;
  input?: ArrayBuffer;
  read?: ReadResult;
  error?: string;
  /** The worker's first message: its program is loaded and takes tasks. */
  ready?: boolean;
}

interface Task {
  id: number;
  message: object;
  transfer: ArrayBuffer[];
  /** Takes the worker's reply. */
  settle: (m: Reply) => void;
  /** The worker died with the task. */
  fail: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  /** Set to 1 by the worker once its program is loaded: a task sent to a worker still starting waits for its start (tens of ms). */
  started: Int32Array;
  /** The gzip block it is compressing. */
  task?: Task | undefined;
  /** The batch reads posted to it and not answered yet, by id (see readFiles). */
  reads: Map<number, (r: ReadResult | undefined) => void>;
  /** The worker batch reads go to. */
  reader?: boolean;
  /** Stop it once it has nothing to do (see retireReader). */
  retire?: boolean;
}

/**
 * A small pool of worker threads for a layer's work off the main thread: compressing gzip blocks
 * (a block at a time per worker), and reading batches of small source files (see readAhead) on one
 * of them. Created on first use, kept while tasks keep coming (a thread's start costs tens of milliseconds of CPU; nothing waits for it, see readyForBlocks) and
 * stopped after IDLE_MS without one; idle workers are unref'd so they never keep the process alive.
 * One pool for both, not a thread each: a many-file COPY hardly compresses (its tar is headers and
 * small files) and a big layer reads no batches, so the two kinds of work rarely want a core at the
 * same time, and each worker is an isolate of some 10 MB of resident memory.
 */
export class LayerWorkers {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  /** When a worker last died before it had started: none is started again for START_RETRY_MS. */
  private startFailedAt: number | undefined;

  /** `program`: the workers' code, WORKER_SOURCE unless a test gives one that fails. */
  constructor(size: number, private readonly program: string = WORKER_SOURCE) {
    this.size = size;
  }

  /** Compresses `block`, whose ArrayBuffer is transferred (the caller gets it back in the result). */
  gzip(block: Uint8Array, level: number): Promise<CompressedBlock> {
    const data =
      block.byteOffset === 0 && block.buffer.byteLength === block.length && block.buffer instanceof ArrayBuffer
        ? block.buffer
        : Uint8Array.prototype.slice.call(block).buffer;
    return new Promise((resolve, reject) => {
      this.submit({ data, level }, [data], (m) => {
        if (m.out && m.input) resolve({ out: Buffer.from(m.out, m.off, m.len), input: m.input });
        else reject(new KilnError('INTERNAL', `gzip worker failed: ${m.error ?? 'no output'}`));
      }, (err) => reject(new KilnError('INTERNAL', `gzip worker died: ${err.message}`, { cause: err })));
    });
  }

  /**
   * Reads a batch of small source files (see readSources) on the reading worker, into `reuse`
   * (transferred) when it has room. The batch is posted at once, queued in that worker behind the
   * batches before it (not held until the worker answers: that answer reaches this thread only at
   * its next event-loop turn, which a busy layer writer seldom takes), and the worker adds 1 to
   * `done` (an Int32Array on shared memory) as soon as it has read it. Never rejects: undefined
   * when the worker failed, and the caller reads the files itself.
   */
  readFiles(req: ReadRequest, room: number, reuse: ArrayBuffer | undefined, done: Int32Array): Promise<ReadResult | undefined> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const slot = this.reader();
    const id = this.nextId++;
    return new Promise((resolve) => {
      slot.reads.set(id, resolve);
      slot.worker.ref();
      slot.worker.postMessage({ id, req, room, reuse, done: done.buffer }, reuse ? [reuse] : []);
    });
  }

  private submit(message: object, transfer: ArrayBuffer[], settle: (m: Reply) => void, fail: (e: Error) => void): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.queue.push({ id: this.nextId++, message, transfer, settle, fail });
    this.dispatch();
  }

  /**
   * Whether a started worker can take a gzip block now or after the blocks before it. When none
   * can, workers are started for later blocks and the caller compresses this one itself: a thread
   * takes tens of milliseconds to start (more on a machine where each new page of memory costs a
   * fault), and a layer of a few blocks that waited for one left this thread idle that long.
   */
  readyForBlocks(): boolean {
    if (this.slots.some((s) => LayerWorkers.ready(s) && s.reads.size === 0)) return true;
    this.grow(1);
    return false;
  }

  /**
   * Whether the reading worker has started; when there is none it is started now. A batch posted
   * to a worker still starting waits for its start, so the caller reads the batch itself meanwhile.
   */
  readerReady(): boolean {
    if (!this.slots.some((s) => s.reader) && this.cannotStart()) return false;
    return LayerWorkers.ready(this.reader());
  }

  /** A worker died before it had started, lately: another would most likely too (a thread limit, memory). */
  private cannotStart(): boolean {
    return this.startFailedAt !== undefined && Date.now() - this.startFailedAt < START_RETRY_MS;
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      // a worker with batch reads queued is not free: a block sent there would wait behind them
      const slot = this.slots.find((s) => LayerWorkers.ready(s) && !s.task && s.reads.size === 0);
      if (!slot) {
        // one worker starting per task waiting, up to the pool's size; each takes the next task once
        // ready, and keeps the process alive until then (the task's promise alone does not)
        this.grow(this.queue.length);
        if (this.slots.length === 0) {
          // none started and none starting (workers die before they start): fail the tasks rather than hold them
          for (const t of this.queue.splice(0)) t.fail(new Error('no layer worker could be started'));
          return;
        }
        for (const s of this.slots) if (!LayerWorkers.ready(s)) s.worker.ref();
        return;
      }
      const task = this.queue.shift()!;
      slot.task = task;
      slot.worker.ref();
      slot.worker.postMessage({ id: task.id, ...task.message }, task.transfer);
    }
  }

  /** Starts workers, while the pool has room, until `starting` of them are starting. */
  private grow(starting: number): void {
    if (this.cannotStart()) return;
    let n = this.slots.filter((s) => !LayerWorkers.ready(s)).length;
    while (n < starting && this.slots.length < this.size) {
      this.spawn();
      n++;
    }
  }

  private static ready(s: Slot): boolean {
    return Atomics.load(s.started, 0) === 1;
  }

  /** Whether a worker has nothing to do. */
  private static idle(s: Slot): boolean {
    return !s.task && s.reads.size === 0;
  }

  /**
   * Stops the reading worker once a layer's reads are over (now, or when its task ends): its heap
   * grew with the reads, and a many-file COPY's peak memory comes after its layer, while the step's
   * key and the context's hash records are made. Another layer of many files starts one again.
   */
  retireReader(): void {
    const slot = this.slots.find((s) => s.reader);
    if (!slot) return;
    if (LayerWorkers.idle(slot)) this.stop(slot);
    else slot.retire = true;
  }

  private stop(slot: Slot): void {
    const i = this.slots.indexOf(slot);
    if (i >= 0) this.slots.splice(i, 1);
    void slot.worker.terminate();
  }

  /**
   * The one worker that reads batches. One, not any: its code is warm for the reads, a second
   * reader only competed with the first and with the main thread for two cores (and grew a second
   * heap), and the other workers stay free for the layer's gzip blocks. With every worker already
   * started, the first one reads too (its batches wait behind the block it is compressing).
   */
  private reader(): Slot {
    let slot = this.slots.find((s) => s.reader);
    if (!slot) {
      slot = this.slots.find((s) => LayerWorkers.ready(s) && LayerWorkers.idle(s)) ?? this.slots.find(LayerWorkers.idle) ?? (this.slots.length < this.size ? this.spawn() : this.slots[0]!);
      slot.reader = true;
    }
    return slot;
  }

  private spawn(): Slot {
    const started = new Int32Array(new SharedArrayBuffer(4));
    const worker = new Worker(this.program, { eval: true, workerData: { ready: started.buffer } });
    const slot: Slot = { worker, started, reads: new Map() };
    worker.on('message', (m: Reply) => {
      if (m.ready === true) {
        this.dispatch();
        if (LayerWorkers.idle(slot)) worker.unref();
        if (this.allIdle()) this.idleSoon();
        return;
      }
      const read = slot.reads.get(m.id);
      if (read) {
        slot.reads.delete(m.id);
        read(m.read);
      } else {
        const task = slot.task;
        slot.task = undefined;
        task?.settle(m);
      }
      if (LayerWorkers.idle(slot)) {
        worker.unref();
        if (slot.retire) this.stop(slot);
      }
      this.dispatch();
      if (this.allIdle()) this.idleSoon();
    });
    const fail = (err: Error): void => {
      if (!LayerWorkers.ready(slot)) this.startFailedAt = Date.now();
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      slot.task?.fail(err);
      slot.task = undefined;
      for (const read of slot.reads.values()) read(undefined);
      slot.reads.clear();
      this.dispatch();
      if (this.allIdle()) this.idleSoon();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      if (this.slots.includes(slot)) fail(new Error(`exit code ${code}`));
    });
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  /**
   * Each worker holds a V8 isolate and its buffers (some 10–20 MB of resident memory): once
   * no task has come for IDLE_MS the workers are stopped, so what follows a layer (a push
   * streaming the blob, the next RUN) does not carry them. A later layer starts them again
   * (about 30 ms).
   */
  private idleSoon(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      void this.stopIfIdle();
    }, IDLE_MS);
    this.idleTimer.unref();
  }

  /** Stops the workers now if none has a task or a read waiting (another build in this process may be using them). */
  async stopIfIdle(): Promise<void> {
    if (!this.allIdle()) return;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    await this.close();
  }

  /** No task queued and every worker without a task or a read. */
  private allIdle(): boolean {
    return this.queue.length === 0 && this.slots.every(LayerWorkers.idle);
  }

  /** Stops the workers (the idle timer, tests and benchmarks). */
  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
    if (slots.length) trimFreedMemory();
  }
}

/** How long idle workers are kept for the next layer. */
const IDLE_MS = 200;
/** How long after a worker died before it started no other is started (the work is done on the calling thread meanwhile). */
const START_RETRY_MS = 5000;

let shared: LayerWorkers | undefined;

/** The process-wide pool: one worker per core, at most 8. */
export function layerWorkers(): LayerWorkers {
  shared ??= new LayerWorkers(Math.max(1, Math.min(8, availableParallelism())));
  return shared;
}

/**
 * Stops the process-wide pool's workers now, if it was ever started, instead of after IDLE_MS:
 * a build calls it once its steps are done, so the export and the push that follow do not run
 * beside two idle isolates and their buffers.
 */
export async function stopLayerWorkers(): Promise<void> {
  await shared?.stopIfIdle();
}
