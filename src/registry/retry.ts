import { errors } from 'undici';
import { isKilnError } from '../errors/index.js';

/** Bounds on retrying one request: attempts, per-wait ceiling, and total time spent waiting. */
export interface RetryPolicy {
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  maxTotalMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseDelayMs: 200, maxDelayMs: 10_000, maxTotalMs: 60_000 };

/** 408, 429 and 5xx gateway/server hiccups; never other 4xx (they do not get better by asking again). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status === 500 || status === 502 || status === 503 || status === 504;
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET', 'ECONNREFUSED', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
]);

/** Connection-level failures worth another attempt. */
export function isRetryableError(e: unknown): boolean {
  if (isKilnError(e)) return false;
  if (e instanceof errors.RequestAbortedError) return false;
  let cur: unknown = e;
  for (let depth = 0; cur && depth < 4; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && RETRYABLE_CODES.has(code)) return true;
    if (cur instanceof errors.SocketError) return true;
    cur = (cur as { cause?: unknown }).cause;
  }
  return e instanceof Error && /terminated|other side closed|socket hang up/i.test(e.message);
}

/** Exponential backoff with full jitter; a server's Retry-After wins when it asks for longer. */
export function retryDelay(policy: RetryPolicy, attempt: number, retryAfter?: string | string[]): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = exp / 2 + Math.random() * (exp / 2);
  const asked = parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
  return Math.min(policy.maxDelayMs, Math.max(jittered, asked ?? 0));
}

/** Seconds or an HTTP date → milliseconds. */
export function parseRetryAfter(v: string | undefined): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - Date.now());
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
