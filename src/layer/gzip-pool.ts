import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { KilnError } from '../errors/index.js';
import { compressBlock } from './gzip-block.js';

/**
 * The worker's program. It is evaluated from source (not loaded from a file)
 * because the same code must run from `dist/` and from the TypeScript sources
 * under vitest, where no compiled worker file exists next to this module.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const zlib = require('node:zlib');
const compressBlock = ${compressBlock.toString()};
parentPort.on('message', (m) => {
  try {
    const out = compressBlock(zlib, new Uint8Array(m.data), m.level);
    // Hand the output's own buffer over without copying, unless it is a slice of Node's shared pool.
    const own = out.buffer.byteLength > Buffer.poolSize;
    const res = own ? out : Uint8Array.prototype.slice.call(out);
    parentPort.postMessage({ id: m.id, out: res.buffer, off: res.byteOffset, len: res.length, input: m.data }, [res.buffer, m.data]);
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String(e && e.message || e) });
  }
});
`;

/** A compressed block, and the input's buffer handed back for reuse. */
export interface CompressedBlock {
  out: Buffer;
  input: ArrayBuffer;
}

interface Task {
  id: number;
  data: ArrayBuffer;
  level: number;
  resolve: (b: CompressedBlock) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  task?: Task | undefined;
}

/**
 * A small pool of worker threads compressing gzip blocks. Created on first
 * use, kept while blocks keep coming (thread start-up costs ~30 ms) and stopped
 * after IDLE_MS without one; idle workers are unref'd so they never keep the
 * process alive.
 */
export class GzipPool {
  readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private nextId = 0;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(size: number) {
    this.size = size;
  }

  /** Compresses `block`, whose ArrayBuffer is transferred (the caller gets it back in the result). */
  run(block: Uint8Array, level: number): Promise<CompressedBlock> {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    const data =
      block.byteOffset === 0 && block.buffer.byteLength === block.length && block.buffer instanceof ArrayBuffer
        ? block.buffer
        : Uint8Array.prototype.slice.call(block).buffer;
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, data, level, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => !s.task);
      if (!slot && this.slots.length < this.size) slot = this.spawn();
      if (!slot) return;
      const task = this.queue.shift()!;
      slot.task = task;
      slot.worker.ref();
      slot.worker.postMessage({ id: task.id, data: task.data, level: task.level }, [task.data]);
    }
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const slot: Slot = { worker };
    worker.on('message', (m: { id: number; out?: ArrayBuffer; off?: number; len?: number; input?: ArrayBuffer; error?: string }) => {
      const task = slot.task;
      slot.task = undefined;
      worker.unref();
      if (task) {
        if (m.out && m.input) task.resolve({ out: Buffer.from(m.out, m.off, m.len), input: m.input });
        else task.reject(new KilnError('INTERNAL', `gzip worker failed: ${m.error ?? 'no output'}`));
      }
      this.dispatch();
      if (this.queue.length === 0 && this.slots.every((s) => !s.task)) this.idleSoon();
    });
    const fail = (err: Error): void => {
      const i = this.slots.indexOf(slot);
      if (i >= 0) this.slots.splice(i, 1);
      slot.task?.reject(new KilnError('INTERNAL', `gzip worker died: ${err.message}`, { cause: err }));
      slot.task = undefined;
      this.dispatch();
      if (this.queue.length === 0 && this.slots.every((s) => !s.task)) this.idleSoon();
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
   * Each worker holds a V8 isolate and its buffers (some 20 MB of resident memory): once
   * no block has come for IDLE_MS the workers are stopped, so what follows a layer (a push
   * streaming the blob, the next RUN) does not carry them. A later layer starts them again
   * (about 30 ms).
   */
  private idleSoon(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      if (this.queue.length === 0 && this.slots.every((s) => !s.task)) void this.close();
    }, IDLE_MS);
    this.idleTimer.unref();
  }

  /** Stops the workers (the idle timer, tests and benchmarks). */
  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}

/** How long idle workers are kept for the next layer. */
const IDLE_MS = 200;

let shared: GzipPool | undefined;

/** The process-wide pool: one worker per core, at most 8. */
export function gzipPool(): GzipPool {
  shared ??= new GzipPool(Math.max(1, Math.min(8, availableParallelism())));
  return shared;
}
