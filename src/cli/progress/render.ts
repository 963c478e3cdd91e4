import type { BuildEvent } from '../../events/index.js';
import { formatSize as size } from '../../spec/size.js';
import { toSolveStatus } from './rawjson.js';
import { LiveRenderer } from './live.js';
import { labelled, transferRunning } from './step-label.js';

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'rawjson' | 'quiet';

export interface ProgressRenderer {
  onEvent(e: BuildEvent): void;
  /** Called once at the end (success or failure) to flush and print the summary. */
  close(): void;
}

export function createRenderer(mode: ProgressMode, out: NodeJS.WriteStream = process.stderr): ProgressRenderer {
  // a live display needs a terminal that moves its cursor: TERM=dumb or a pipe gets plain lines
  const liveCapable = Boolean(out.isTTY) && process.env['TERM'] !== 'dumb';
  const resolved = mode === 'auto' || mode === 'tty' ? (liveCapable ? 'tty' : 'plain') : mode;
  switch (resolved) {
    case 'json':
      return { onEvent: (e) => out.write(`${JSON.stringify(e)}\n`), close: () => {} };
    case 'rawjson': {
      const started = new Map<string, number>();
      return {
        onEvent: (e) => {
          const s = toSolveStatus(e, started);
          if (s) out.write(`${JSON.stringify(s)}\n`);
        },
        close: () => {},
      };
    }
    case 'quiet':
      return { onEvent: () => {}, close: () => {} };
    case 'tty':
      return new LiveRenderer(out);
    default:
      return new LineRenderer(out, false);
  }
}

/**
 * Plain: one line per event, prefixed with the step, like `--progress=plain`.
 * TTY: the same lines with colour for CACHED/DONE/ERROR; steps of parallel
 * stages interleave, each line carrying its stage name, so nothing is redrawn.
 */
class LineRenderer implements ProgressRenderer {
  private readonly started = Date.now();
  private cached = 0;
  private ran = 0;
  private cpu = 0;
  private peakMem = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly color: boolean,
  ) {}

  private paint(code: number, s: string): string {
    return this.color ? `\u001b[${code}m${s}\u001b[0m` : s;
  }

  onEvent(e: BuildEvent): void {
    const w = (s: string) => this.out.write(`${s}\n`);
    switch (e.type) {
      case 'step-start':
        w(labelled(e.step, e.step.text));
        break;
      case 'step-cached':
        this.cached++;
        w(labelled(e.step, this.paint(36, 'CACHED')));
        break;
      case 'step-log':
        w(labelled(e.step, e.stream === 'stderr' ? this.paint(33, e.line) : e.line));
        break;
      case 'step-done': {
        if (e.layer || e.usage) this.ran++;
        if (e.usage) {
          this.cpu += e.usage.cpuSeconds;
          this.peakMem = Math.max(this.peakMem, e.usage.peakMemoryBytes ?? 0);
        }
        const parts = [`DONE ${(e.durationMs / 1000).toFixed(2)}s`];
        if (e.layer) parts.push(`layer ${size(e.layer.size)}`);
        if (e.usage) parts.push(`cpu ${e.usage.cpuSeconds.toFixed(2)}s${e.usage.peakMemoryBytes ? `, mem ${size(e.usage.peakMemoryBytes)}` : ''}`);
        if (e.missReason) parts.push(`cache miss: ${e.missReason}`);
        if (e.layer || e.usage || e.missReason) w(labelled(e.step, this.paint(32, parts.join(', '))));
        break;
      }
      case 'step-error':
        w(labelled(e.step, this.paint(31, `ERROR: ${e.message}`)));
        break;
      case 'warning':
        w(this.paint(33, `WARNING: ${e.file && e.line ? `${e.file}:${e.line}: ` : ''}${e.message}${e.rule ? ` (${e.rule})` : ''}`));
        break;
      case 'pull-progress':
        if (e.phase === 'done') w(`pull ${e.ref}: ${e.digest.slice(7, 19)} ${size(e.total)} done`);
        break;
      case 'push-progress':
        if (!transferRunning(e.phase)) w(`push ${e.ref}: ${e.digest.slice(7, 19)} ${e.phase}`);
        break;
      case 'phase':
        if (e.state === 'done') w(`${e.name}${e.detail ? ` ${e.detail}` : ''} done${e.durationMs !== undefined ? ` in ${(e.durationMs / 1000).toFixed(2)}s` : ''}`);
        break;
      case 'build-done':
        w(this.paint(32, `built ${e.manifestDigest}${e.tags.length ? ` as ${e.tags.join(', ')}` : ''}`));
        break;
      default:
        break;
    }
  }

  close(): void {
    const secs = ((Date.now() - this.started) / 1000).toFixed(2);
    const usage = this.cpu > 0 ? `; RUN cpu ${this.cpu.toFixed(2)}s${this.peakMem ? `, peak mem ${size(this.peakMem)}` : ''}` : '';
    this.out.write(`${this.ran} steps ran, ${this.cached} cached in ${secs}s${usage}\n`);
  }
}
