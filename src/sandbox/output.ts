import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';

export type OutputStream = 'stdout' | 'stderr';
export type OutputListener = (stream: OutputStream, line: string) => void;

/**
 * Collects a container's output: complete lines go to the listener as they
 * arrive (a partial line waits for its newline or the end), every byte goes to
 * the log file unclipped, and the last lines are kept for the failure message.
 */
export class OutputSink {
  private readonly partial: Record<OutputStream, string> = { stdout: '', stderr: '' };
  private readonly tailLines: string[] = [];
  private readonly log: WriteStream | undefined;
  private logError: unknown;

  constructor(
    private readonly listener: OutputListener | undefined,
    logFile: string | undefined,
    private readonly tailSize = 20,
  ) {
    if (logFile) {
      this.log = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
      this.log.on('error', (e) => (this.logError = e));
    }
  }

  write(stream: OutputStream, chunk: Buffer): void {
    this.log?.write(chunk);
    const text = this.partial[stream] + chunk.toString('utf8');
    const lines = text.split('\n');
    this.partial[stream] = lines.pop() ?? '';
    for (const line of lines) this.emit(stream, line);
  }

  private emit(stream: OutputStream, line: string): void {
    const clean = line.endsWith('\r') ? line.slice(0, -1) : line;
    this.tailLines.push(clean);
    if (this.tailLines.length > this.tailSize) this.tailLines.shift();
    this.listener?.(stream, clean);
  }

  /** Flushes partial lines and closes the log file. */
  async end(): Promise<void> {
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.partial[s]) this.emit(s, this.partial[s]);
      this.partial[s] = '';
    }
    if (this.log && !this.log.destroyed) {
      this.log.end();
      if (!this.logError) await once(this.log, 'close').catch(() => undefined);
    }
  }

  tail(): string[] {
    return [...this.tailLines];
  }
}
