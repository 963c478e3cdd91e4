import type { FileHandle } from 'node:fs/promises';

/** Bytes written between two early flushes of a blob being written. */
export const WRITE_BACK_STEP = 32 * 1024 * 1024;

/**
 * Starts the disk's writeback of a file while it is still being written, so
 * the fsync that publishes it waits only for the last step instead of the
 * whole file. A blob is fsynced before it is named by its digest; for a
 * 500 MB layer that final fsync alone took about 0.4 s, during which nothing
 * else of the build ran. Here an `fdatasync` runs in the thread pool each
 * time another `step` bytes have been written, at most one at a time, while
 * the source goes on producing (reading, hashing, compressing): the same
 * bytes reach the disk, but beside the work rather than after it.
 *
 * Durability is unchanged: the caller still fsyncs the whole file before the
 * rename that publishes it. A failed early flush is kept and thrown by
 * `settle()`, so an I/O error is never lost.
 */
export class WriteBack {
  private flushedTo = 0;
  private inFlight: Promise<void> | undefined;
  private failure: unknown;

  constructor(
    private readonly fh: FileHandle,
    private readonly step: number = WRITE_BACK_STEP,
  ) {}

  /** Tells how many bytes the file holds now (written, not only queued); starts a flush when a step has passed. */
  wrote(size: number): void {
    if (this.inFlight !== undefined || this.failure !== undefined || size - this.flushedTo < this.step) return;
    this.flushedTo = size;
    this.inFlight = this.fh.datasync().then(
      () => {
        this.inFlight = undefined;
      },
      (e: unknown) => {
        this.failure = e;
        this.inFlight = undefined;
      },
    );
  }

  /** Waits for a flush still running (the file must not be closed under it) and throws the first one that failed. */
  async settle(): Promise<void> {
    await this.inFlight;
    if (this.failure !== undefined) throw this.failure;
  }
}
