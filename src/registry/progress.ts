import type { Digest } from '../image/digest.js';
import type { RegistryEventListener, TransferPhase } from './events.js';

const STEP = 512 * 1024;

/**
 * Progress of one blob, throttled to one event per 512 KiB so a fast
 * listener cost stays proportional to megabytes, not chunks.
 */
export class BlobProgress {
  private last = -Infinity;

  constructor(
    private readonly type: 'pull-progress' | 'push-progress',
    private readonly ref: string,
    private readonly digest: Digest,
    private readonly mediaType: string,
    private readonly total: number,
    private readonly listener: RegistryEventListener | undefined,
  ) {}

  emit(phase: TransferPhase, bytesDone: number): void {
    if (!this.listener) return;
    if (phase === 'downloading' || phase === 'uploading') {
      if (bytesDone - this.last < STEP && bytesDone !== this.total) return;
      this.last = bytesDone;
    }
    this.listener({ type: this.type, ref: this.ref, digest: this.digest, mediaType: this.mediaType, phase, done: bytesDone, total: this.total });
  }
}
