import type { BuildEvent, StepRef } from '../../events/index.js';
import { formatSize } from '../../spec/size.js';
import { labelled, transferRunning } from './step-label.js';

/**
 * `--progress tty`: a live region at the bottom of the terminal, redrawn in
 * place like buildx's. Each running step has a line with its stage, platform
 * and a running timer, with the last lines of its output under it; each blob
 * being pulled or pushed has a bar with sizes and speed. A finished step
 * leaves the region and is written once above it (`DONE 1.2s` or `CACHED`),
 * so the scrollback is a readable log even when stages run in parallel.
 *
 * The few escape sequences (cursor up, erase below, hide/show cursor) are
 * written here directly; lines are cut to the terminal's width, which is read
 * again on every resize (SIGWINCH).
 */
const ESC = '\u001b[';
const TAIL_LINES = 5;
const REDRAW_MS = 100;

interface Running {
  step: StepRef;
  started: number;
  tail: string[];
}

interface Transfer {
  verb: 'pull' | 'push';
  ref: string;
  digest: string;
  done: number;
  total: number;
  started: number;
}

export class LiveRenderer {
  private readonly running = new Map<string, Running>();
  private readonly transfers = new Map<string, Transfer>();
  private readonly startedAt = Date.now();
  private drawn = 0;
  private cached = 0;
  private ran = 0;
  private closed = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onResize = () => this.redraw();

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly now: () => number = Date.now,
  ) {
    this.out.write(`${ESC}?25l`);
    this.timer = setInterval(() => this.redraw(), REDRAW_MS);
    // the timer only animates: it must not keep a finished program alive
    this.timer.unref();
    this.out.on('resize', this.onResize);
  }

  private get width(): number {
    return Math.max(20, (this.out.columns || 80) - 1);
  }

  private cut(s: string): string {
    const chars = [...s];
    return chars.length <= this.width ? s : `${chars.slice(0, this.width - 1).join('')}…`;
  }

  /** Writes a permanent line above the live region. */
  private commit(line: string): void {
    this.clear();
    this.out.write(`${this.cut(line)}\n`);
    this.redraw();
  }

  private clear(): void {
    if (this.drawn > 0) this.out.write(`${ESC}${this.drawn}F${ESC}0J`);
    this.drawn = 0;
  }

  private region(): string[] {
    const t = this.now();
    const lines: string[] = [];
    for (const r of this.running.values()) {
      const secs = `${((t - r.started) / 1000).toFixed(1)}s`;
      const head = `=> ${labelled(r.step, r.step.text)}`;
      const room = this.width - secs.length - 1;
      const cutHead = [...head].length > room ? `${[...head].slice(0, Math.max(1, room - 1)).join('')}…` : head;
      lines.push(`${cutHead.padEnd(room)} ${secs}`);
      for (const l of r.tail) lines.push(this.cut(`   ${l}`));
    }
    for (const x of this.transfers.values()) {
      const elapsed = Math.max(0.001, (t - x.started) / 1000);
      const pct = x.total > 0 ? Math.min(1, x.done / x.total) : 0;
      const barWidth = Math.max(5, Math.min(30, this.width - 60));
      const filled = Math.round(pct * barWidth);
      const bar = `[${'='.repeat(filled)}${filled < barWidth ? '>' : ''}${' '.repeat(Math.max(0, barWidth - filled - 1))}]`;
      lines.push(this.cut(`=> ${x.verb} ${x.digest.slice(7, 19)} ${bar} ${formatSize(x.done)} / ${formatSize(x.total)} ${formatSize(Math.round(x.done / elapsed))}/s  ${x.ref}`));
    }
    return lines;
  }

  private redraw(): void {
    if (this.closed) return;
    const lines = this.region();
    this.clear();
    if (lines.length > 0) this.out.write(`${lines.join('\n')}\n`);
    this.drawn = lines.length;
  }

  onEvent(e: BuildEvent): void {
    switch (e.type) {
      case 'step-start':
        this.running.set(e.step.id, { step: e.step, started: e.time, tail: [] });
        this.redraw();
        break;
      case 'step-log': {
        const r = this.running.get(e.step.id);
        if (!r) break;
        r.tail.push(e.line);
        if (r.tail.length > TAIL_LINES) r.tail.shift();
        break;
      }
      case 'step-cached':
        this.cached++;
        this.running.delete(e.step.id);
        this.commit(`=> CACHED ${labelled(e.step, e.step.text)}`);
        break;
      case 'step-done': {
        this.running.delete(e.step.id);
        if (e.layer || e.usage) this.ran++;
        const extra = e.layer ? `, layer ${formatSize(e.layer.size)}` : '';
        this.commit(`=> ${labelled(e.step, e.step.text)}  DONE ${(e.durationMs / 1000).toFixed(1)}s${extra}`);
        break;
      }
      case 'step-error': {
        const r = this.running.get(e.step.id);
        this.running.delete(e.step.id);
        const tail = r?.tail.map((l) => `   ${l}`) ?? [];
        this.commit(`=> ERROR ${labelled(e.step, e.step.text)}`);
        for (const l of tail) this.commit(l);
        this.commit(`   ${e.message}`);
        break;
      }
      case 'pull-progress':
      case 'push-progress': {
        const verb = e.type === 'pull-progress' ? 'pull' : 'push';
        const key = `${verb}:${e.digest}`;
        if (transferRunning(e.phase)) {
          const x = this.transfers.get(key) ?? { verb, ref: e.ref, digest: e.digest, done: 0, total: e.total, started: e.time };
          x.done = e.done;
          x.total = e.total;
          this.transfers.set(key, x);
          break;
        }
        const x = this.transfers.get(key);
        this.transfers.delete(key);
        const secs = x ? ` ${((e.time - x.started) / 1000).toFixed(1)}s` : '';
        this.commit(`=> ${verb} ${e.ref} ${e.digest.slice(7, 19)} ${e.phase === 'done' ? `${formatSize(e.total)} done${secs}` : e.phase}`);
        break;
      }
      case 'warning':
        this.commit(`WARNING: ${e.file && e.line ? `${e.file}:${e.line}: ` : ''}${e.message}${e.rule ? ` (${e.rule})` : ''}`);
        break;
      case 'phase':
        if (e.state === 'done') this.commit(`=> ${e.name}${e.detail ? ` ${e.detail}` : ''} done${e.durationMs !== undefined ? ` ${(e.durationMs / 1000).toFixed(1)}s` : ''}`);
        break;
      case 'build-done':
        this.commit(`=> built ${e.manifestDigest}${e.tags.length ? ` as ${e.tags.join(', ')}` : ''}`);
        break;
      default:
        break;
    }
  }

  close(): void {
    if (this.closed) return;
    clearInterval(this.timer);
    this.out.off('resize', this.onResize);
    this.running.clear();
    this.transfers.clear();
    this.clear();
    this.closed = true;
    const secs = ((this.now() - this.startedAt) / 1000).toFixed(1);
    this.out.write(`${this.ran} steps ran, ${this.cached} cached in ${secs}s\n${ESC}?25h`);
  }
}
