import { createHash } from 'node:crypto';
import { createWriteStream, utimesSync, chmodSync } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { posix } from 'node:path';
import { KilnError } from '../errors/index.js';

export function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

export interface Downloaded {
  /** Host path of the downloaded file (mode 0600, mtime from Last-Modified). */
  file: string;
  /** The name the file gets in a directory destination. */
  name: string;
  sha256: string;
}

/**
 * ADD <url>: downloads to `dir`, verifying `--checksum` (sha256:<hex>) before
 * the file can be used. The file name comes from the URL path, else from
 * Content-Disposition, else `__unnamed__` (BuildKit's fallback).
 */
export async function downloadUrl(url: string, dir: string, checksum?: string, signal?: AbortSignal): Promise<Downloaded> {
  let want: string | undefined;
  if (checksum !== undefined) {
    const m = /^sha256:([a-f0-9]{64})$/.exec(checksum);
    if (!m) throw new KilnError('USAGE', `unsupported --checksum "${checksum}" (want sha256:<64 hex>)`);
    want = m[1];
  }
  let res;
  try {
    // undici is loaded only when an ADD really downloads: a cached build never pays for it
    const { fetch } = await import('./download-client.js');
    res = await fetch(url, signal ? { redirect: 'follow', signal } : { redirect: 'follow' });
  } catch (e) {
    if (signal?.aborted) throw new KilnError('CANCELLED', `ADD cancelled: ${url}`);
    throw new KilnError('CONTEXT', `ADD failed: cannot download ${url}: ${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message}`);
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw new KilnError('CONTEXT', `ADD failed: cannot download ${url}: HTTP ${res.status}`);
  }
  const name = nameFor(url, res.headers.get('content-disposition'));
  const file = `${dir}/${name}`;
  const h = createHash('sha256');
  const out = createWriteStream(file, { mode: 0o600 });
  const tee = new Writable({
    write(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      if (out.write(chunk)) cb();
      else out.once('drain', () => cb());
    },
    final(cb) {
      out.end(cb);
    },
  });
  try {
    await pipeline(res.body, tee);
  } catch (e) {
    throw new KilnError('CONTEXT', `ADD failed: download of ${url} interrupted: ${(e as Error).message}`);
  }
  const sha256 = h.digest('hex');
  if (want !== undefined && want !== sha256) {
    throw new KilnError('DIGEST_MISMATCH', `ADD failed: checksum of ${url} is sha256:${sha256}, expected sha256:${want}`);
  }
  chmodSync(file, 0o600);
  const lm = res.headers.get('last-modified');
  const when = lm ? Date.parse(lm) : NaN;
  if (Number.isFinite(when)) utimesSync(file, when / 1000, when / 1000);
  return { file, name, sha256 };
}

/**
 * The download's file name: the last element of the decoded URL path, as BuildKit takes
 * `path.Base` of Go's decoded `URL.Path`. Decoding before taking the last element matters:
 * `http://h/..%2F..%2Fx` names `x`, never `../../x`, which would put the file outside
 * `dir` on the host. Whatever comes out is one plain name or the fallback.
 */
function nameFor(url: string, disposition: string | null): string {
  const raw = new URL(url).pathname;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    decoded = raw;
  }
  const base = plainName(posix.basename(decoded));
  if (base !== undefined) return base;
  const m = disposition ? /filename="?([^";]+)"?/i.exec(disposition) : null;
  return plainName(m?.[1]?.split('/').pop() ?? '') ?? '__unnamed__';
}

/** `name` when it is one file name that stays in its directory, else undefined. */
function plainName(name: string): string | undefined {
  return name !== '' && name !== '.' && name !== '..' && !/[/\0]/.test(name) ? name : undefined;
}
