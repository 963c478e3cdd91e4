import type { Dispatcher } from 'undici';
import { KilnError } from '../errors/index.js';

/** Error answers are read this far for their OCI error text; the rest is dropped. */
export const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * A document (manifest, index, token answer, tag list, error text) must
 * arrive whole within this time of its headers. undici's idle timeout alone
 * lets a registry that sends one byte now and then hold kiln for ever.
 */
export const DOCUMENT_DEADLINE_MS = 60_000;

/**
 * A blob body must bring at least `minBytes` in every `windowMs`, else it is
 * dropped as a lost connection would be (and resumed from where it stopped,
 * within the retry policy's attempts). About 1 KiB/s: no link a pull can
 * finish on is slower, and a trickling registry is bounded.
 */
export const BLOB_RATE = { windowMs: 60_000, minBytes: 64 * 1024 };

/**
 * A response body read into memory, at most `limit` bytes: a declared
 * Content-Length over the limit fails before reading, a body that grows past
 * it fails as soon as it does (and the connection is dropped), so a hostile
 * registry cannot make kiln hold more than `limit`. With `truncate`, the
 * first `limit` bytes are returned instead of failing.
 */
export async function readBody(
  body: Dispatcher.ResponseData['body'],
  opts: { limit: number; what: string; contentLength?: string | string[] | undefined; truncate?: boolean; deadlineMs?: number },
): Promise<Buffer> {
  const declared = Number(Array.isArray(opts.contentLength) ? opts.contentLength[0] : opts.contentLength);
  if (!opts.truncate && Number.isFinite(declared) && declared > opts.limit) {
    body.destroy();
    throw new KilnError('REGISTRY', `${opts.what}: the registry announced ${declared} bytes, over kiln's limit of ${limitText(opts.limit)}`);
  }
  const parts: Buffer[] = [];
  let n = 0;
  const deadlineMs = opts.deadlineMs ?? DOCUMENT_DEADLINE_MS;
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    body.destroy();
  }, deadlineMs);
  const lateError = (): KilnError => new KilnError('REGISTRY', `${opts.what}: the registry did not send the whole answer within ${deadlineMs / 1000} s (${n} bytes came)`);
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (n + chunk.length > opts.limit) {
        if (!opts.truncate) throw new KilnError('REGISTRY', `${opts.what}: the registry sent more than kiln's limit of ${limitText(opts.limit)}`);
        parts.push(chunk.subarray(0, opts.limit - n));
        n = opts.limit;
        break;
      }
      parts.push(chunk);
      n += chunk.length;
    }
  } catch (e) {
    // an error text is best effort: what came in time is enough
    if (!late) throw e;
    if (!opts.truncate) throw lateError();
  } finally {
    clearTimeout(timer);
    if (!body.readableEnded) body.destroy();
  }
  if (late && !opts.truncate) throw lateError();
  return Buffer.concat(parts, n);
}

/**
 * Watches a blob body while kiln waits for it: `received()` says how many
 * bytes have come so far; a window of `rate.windowMs` that brings fewer than
 * `rate.minBytes` destroys the body with an error the retry rules treat as a
 * dropped connection. Time the consumer spends on a chunk (between `pause`
 * and `resume`) is not counted against the registry.
 */
export class RateWatch {
  private timer: NodeJS.Timeout | undefined;
  private before = 0;
  private stopped = false;

  constructor(
    private readonly body: { destroy(error?: Error): unknown },
    private readonly received: () => number,
    private readonly what: string,
    private readonly rate = BLOB_RATE,
  ) {
    this.arm();
  }

  pause(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  resume(): void {
    if (!this.stopped) this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.pause();
  }

  private arm(): void {
    this.before = this.received();
    this.timer = setTimeout(() => this.check(), this.rate.windowMs);
    this.timer.unref();
  }

  private check(): void {
    if (this.received() - this.before >= this.rate.minBytes) return this.arm();
    this.timer = undefined;
    this.body.destroy(Object.assign(new Error(`${this.what}: fewer than ${this.rate.minBytes} bytes came in ${this.rate.windowMs / 1000} s`), { code: 'UND_ERR_BODY_TIMEOUT' }));
  }
}

function limitText(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}
