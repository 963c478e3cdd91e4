import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { KilnError } from '../errors/index.js';

export type StreamCompression = 'gzip' | 'zstd' | 'none';

/** Compression told by the first bytes (gzip 1f 8b, zstd 28 b5 2f fd). */
export function sniffCompression(head: Uint8Array): StreamCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/**
 * Decompresses a stream. zstd goes through the `zstd` binary because Node 20's
 * zlib has no zstd; errors of the source or the decoder surface on the result.
 */
export function decompress(src: Readable, compression: StreamCompression): Readable {
  if (compression === 'none') return src;
  if (compression === 'gzip') {
    const gz = createGunzip();
    src.on('error', (e) => gz.destroy(e));
    gz.on('close', () => src.destroy());
    return src.pipe(gz);
  }
  const out = new PassThrough();
  const child = spawn('zstd', ['-dc', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.on('error', (e) => out.destroy(new KilnError('UNSUPPORTED', `zstd: ${e.message}`)));
  src.on('error', (e) => {
    child.kill();
    out.destroy(e);
  });
  child.stdin.on('error', () => undefined);
  src.pipe(child.stdin);
  child.stdout.pipe(out, { end: false });
  child.on('close', (code) => {
    if (code === 0) out.end();
    else out.destroy(new KilnError('ARCHIVE', `zstd: exit ${code}: ${stderr.trim().split('\n')[0] ?? ''}`));
  });
  out.on('close', () => {
    if (child.exitCode === null) child.kill();
    src.destroy();
  });
  return out;
}
