import type { Dispatcher } from 'undici';
import { KilnError } from '../errors/index.js';

/** Error answers are read this far for their OCI error text; the rest is dropped. */
export const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * A response body read into memory, at most `limit` bytes: a declared
 * Content-Length over the limit fails before reading, a body that grows past
 * it fails as soon as it does (and the connection is dropped), so a hostile
 * registry cannot make kiln hold more than `limit`. With `truncate`, the
 * first `limit` bytes are returned instead of failing.
 */
export async function readBody(
  body: Dispatcher.ResponseData['body'],
  opts: { limit: number; what: string; contentLength?: string | string[] | undefined; truncate?: boolean },
): Promise<Buffer> {
  const declared = Number(Array.isArray(opts.contentLength) ? opts.contentLength[0] : opts.contentLength);
  if (!opts.truncate && Number.isFinite(declared) && declared > opts.limit) {
    body.destroy();
    throw new KilnError('REGISTRY', `${opts.what}: the registry announced ${declared} bytes, over kiln's limit of ${limitText(opts.limit)}`);
  }
  const parts: Buffer[] = [];
  let n = 0;
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
  } finally {
    if (!body.readableEnded) body.destroy();
  }
  return Buffer.concat(parts, n);
}

function limitText(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : bytes % 1024 === 0 ? `${bytes / 1024} KiB` : `${bytes} bytes`;
}
