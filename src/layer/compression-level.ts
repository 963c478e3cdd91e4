import { KilnError } from '../errors/index.js';
import type { Compression } from './types.js';

// Its own module: option parsing checks a level on every build, and compress.ts brings the
// compressors' worker pool and zlib with it.

/** A level the compressor accepts: gzip 0–9, zstd 1–22; none for uncompressed. `assumed` says the compression was not given with it. */
export function checkCompressionLevel(compression: Compression, level: number, where: string, assumed = false): void {
  if (assumed) return; // checked once the build's compression is known
  const [lo, hi] = compression === 'gzip' ? [0, 9] : compression === 'zstd' ? [1, 22] : [0, -1];
  if (!Number.isInteger(level) || level < lo || level > hi) {
    throw new KilnError('USAGE', compression === 'uncompressed' ? `${where}: compression-level does not apply to uncompressed layers` : `${where}: ${compression} compression level must be ${lo}-${hi}, got ${level}`);
  }
}
