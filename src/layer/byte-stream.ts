import type { Hash } from 'node:crypto';

/** Bytes in order, from a stream, a generator or an array of chunks. */
export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/**
 * Passes bytes through until `signal` fires, then throws its reason: checked before each chunk,
 * so a writer fed from here stops within one chunk of the signal however long its source is.
 */
export async function* untilAborted(src: ByteSource, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  signal.throwIfAborted();
  for await (const chunk of src) {
    signal.throwIfAborted();
    yield chunk;
  }
  // after the last chunk too: the writer asks for one more before it publishes the blob
  signal.throwIfAborted();
}

/** Passes bytes through unchanged while counting (and, given a hash, hashing) them. */
export async function* hashing(src: ByteSource, hash: Hash | null, count: { bytes: number }): AsyncGenerator<Uint8Array> {
  for await (const chunk of src) {
    hash?.update(chunk);
    count.bytes += chunk.length;
    yield chunk;
  }
}

/**
 * The bytes of one source read by two consumers: the caller iterates the
 * returned generator as it would `src`, and `side` reads a copy of every chunk
 * through its own iterable, at most `maxQueued` chunks behind (the source
 * waits for it, so memory stays bounded by a few chunks, not by the stream).
 * `done` settles when `side` does. A side that fails makes the main iteration
 * throw its error; a main iteration that stops early (error, `return`) ends
 * the side's iterable with an error, so `side` never waits forever. A side
 * that returns before the end (a tar reader that stops at the end-of-archive
 * blocks) is simply fed no more.
 */
export function teeBytes(src: ByteSource, side: (bytes: AsyncIterable<Uint8Array>) => Promise<void>, maxQueued = 4): { bytes: AsyncGenerator<Uint8Array>; done: Promise<void> } {
  const queue: Uint8Array[] = [];
  let ended = false;
  let abortError: unknown;
  let sideSettled = false;
  let sideError: unknown;
  let wakeSide: (() => void) | undefined;
  let wakeMain: (() => void) | undefined;
  const signalSide = (): void => {
    const w = wakeSide;
    wakeSide = undefined;
    w?.();
  };
  const signalMain = (): void => {
    const w = wakeMain;
    wakeMain = undefined;
    w?.();
  };
  const sideBytes: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      async next(): Promise<IteratorResult<Uint8Array>> {
        for (;;) {
          const chunk = queue.shift();
          if (chunk) {
            signalMain();
            return { value: chunk, done: false };
          }
          if (abortError !== undefined) throw abortError;
          if (ended) return { value: undefined, done: true };
          await new Promise<void>((r) => (wakeSide = r));
        }
      },
    }),
  };
  const done = side(sideBytes).then(
    () => {
      sideSettled = true;
      queue.length = 0;
      signalMain();
    },
    (e: unknown) => {
      sideSettled = true;
      sideError = e ?? new Error('side consumer failed');
      queue.length = 0;
      signalMain();
      throw e;
    },
  );
  // the caller always awaits `done`; this only keeps an early failure from being reported as unhandled meanwhile
  done.catch(() => undefined);
  async function* main(): AsyncGenerator<Uint8Array> {
    let complete = false;
    try {
      for await (const chunk of src) {
        if (sideError !== undefined) throw sideError;
        if (!sideSettled) {
          queue.push(chunk);
          signalSide();
          while (queue.length > maxQueued && !sideSettled) await new Promise<void>((r) => (wakeMain = r));
          if (sideError !== undefined) throw sideError;
        }
        yield chunk;
      }
      complete = true;
    } finally {
      if (complete) ended = true;
      else abortError = new Error('the byte stream stopped before its end');
      signalSide();
    }
  }
  return { bytes: main(), done };
}
