import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { access, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { bench, BASE, type Bench } from '../builder/helpers.js';
import { writeReport } from '../../src/report/index.js';
import type { BuildEvent } from '../../src/events/index.js';

/** Chromium from Debian's `chromium` package; CI installs it. A missing browser fails the test: this is the only check that the page really renders. */
async function findChromium(): Promise<string> {
  const names = process.env['CHROMIUM'] ? [process.env['CHROMIUM']] : ['chromium', 'chromium-browser'];
  for (const n of names) {
    const candidates = n.includes('/') ? [n] : (process.env['PATH'] ?? '').split(':').map((d) => path.join(d, n));
    for (const c of candidates) {
      try {
        await access(c, constants.X_OK);
        return c;
      } catch {
        // next
      }
    }
  }
  throw new Error('chromium not found: install the Debian package (apt-get install -y chromium) or set CHROMIUM');
}

function chromium(bin: string, profile: string, args: string[]): Promise<string> {
  const base = [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-dev-shm-usage',
    '--hide-scrollbars',
    `--user-data-dir=${profile}`,
  ];
  return new Promise((resolve, reject) => {
    execFile(bin, [...base, ...args], { timeout: 30_000, killSignal: 'SIGKILL', maxBuffer: 64 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`chromium ${args.join(' ')} failed: ${err.message}\n${stderr.slice(-2000)}`));
      else resolve(stdout);
    });
  });
}

const dockerfile = (extra: string) => `FROM ${BASE} AS builder
COPY src.txt /src/src.txt
RUN cat /src/src.txt /src/src.txt > /src/built.txt

FROM ${BASE} AS tools
RUN echo tool > /tool.txt

FROM ${BASE}
COPY --from=builder /src/built.txt /app/built.txt
COPY --from=tools /tool.txt /app/tool.txt
ENV MODE=prod
${extra}`;

let b: Bench;
let profiles: string;
beforeAll(async () => {
  b = await bench();
  profiles = await mkdtemp(path.join(b.dir, 'chromium-'));
});
afterAll(async () => {
  await b?.cleanup();
});

describe('build report in a real browser', () => {
  it('renders a real build: every step, the CACHED marks, the critical path', async () => {
    // looked up inside the test, so a missing browser counts as a failed test rather than a skipped one
    const bin = await findChromium();
    const ctx = await b.context({ Dockerfile: dockerfile(''), 'src.txt': 'hello\n' });
    await b.build(ctx, { tags: ['localhost/report/app:1'] });
    // the same stages again plus one new step: everything before it is CACHED, the new RUN runs
    const ctx2 = await b.context({ Dockerfile: dockerfile('RUN echo fresh > /app/fresh.txt\n'), 'src.txt': 'hello\n' });
    const { events } = await b.build(ctx2, { tags: ['localhost/report/app:2'] });
    const started = events.flatMap((e) => (e.type === 'step-start' ? [e.step] : []));
    const stepTexts = started.map((s) => s.text);
    const cached = events.filter((e): e is Extract<BuildEvent, { type: 'step-cached' }> => e.type === 'step-cached');
    expect(cached.length).toBeGreaterThanOrEqual(4);
    expect(events.some((e) => e.type === 'step-done' && e.step.text.startsWith('RUN echo fresh') && e.usage)).toBe(true);

    const html = path.join(b.dir, 'report.html');
    const svg = path.join(b.dir, 'report.svg');
    await writeReport(events, html);
    await writeReport(events, svg);

    const dom = await chromium(bin, path.join(profiles, 'dom'), ['--dump-dom', `file://${html}`]);
    const inDom = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
    expect(dom).toContain('kiln build report');
    expect(dom).toContain('built localhost/report/app:2');
    for (const t of stepTexts) expect(dom, t).toContain(inDom(t));
    // one bar and one row per step, each cached step marked as such in both
    const bars = [...dom.matchAll(/<g class="step[^"]*" data-step="(\d+)" data-stage="\d+" data-status="(\w+)" data-critical="(\w+)"/g)];
    expect(bars).toHaveLength(started.length);
    expect(bars.filter((m) => m[2] === 'cached')).toHaveLength(cached.length);
    const rows = [...dom.matchAll(/<tr id="step-(\d+)"[^>]*>([\s\S]*?)<\/tr>/g)];
    expect(rows).toHaveLength(started.length);
    for (const c of cached) {
      const row = rows.find((r) => r[1] === String(c.step.index));
      expect(row?.[2], c.step.text).toContain('<span class="badge cached">CACHED</span>');
    }
    // the critical path ends in the final stage's last step and runs through the stage it waited for last
    const critical = bars.filter((m) => m[3] === 'true').map((m) => Number(m[1]));
    const last = events.filter((e) => e.type === 'step-start').at(-1) as Extract<BuildEvent, { type: 'step-start' }>;
    expect(critical).toContain(last.step.index);
    expect(critical.length).toBeGreaterThan(6);
    expect(dom).toContain('id="critical-path"');
    expect(dom.match(/<li data-critical-step="/g)?.length).toBe(critical.length);
    expect(dom).toMatch(/stage 2 waits for (builder|tools)/);
    // the inline script ran: it swaps the slow native <title> tooltips for its own
    expect(dom).not.toMatch(/<g class="step[^>]*><title>/);
    expect(dom).toContain('<div id="tip"');

    const shot = path.join(b.dir, 'report.png');
    await chromium(bin, path.join(profiles, 'shot'), ['--window-size=1280,1600', `--screenshot=${shot}`, `file://${html}`]);
    const png = await readFile(shot);
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect((await stat(shot)).size).toBeGreaterThan(20_000);

    // the SVG file opens on its own too
    const svgDom = await chromium(bin, path.join(profiles, 'svg'), ['--dump-dom', `file://${svg}`]);
    expect(svgDom).toContain('CACHED');
    expect(svgDom).toContain(inDom(last.step.text));
    const svgShot = path.join(b.dir, 'report-svg.png');
    await chromium(bin, path.join(profiles, 'svgshot'), ['--window-size=1140,700', `--screenshot=${svgShot}`, `file://${svg}`]);
    expect((await stat(svgShot)).size).toBeGreaterThan(10_000);
    // KILN_REPORT_KEEP=DIR keeps the pages and screenshots, to look at them by eye
    if (process.env['KILN_REPORT_KEEP']) {
      const { copyFile } = await import('node:fs/promises');
      for (const f of [html, svg, shot, svgShot]) await copyFile(f, path.join(process.env['KILN_REPORT_KEEP'], path.basename(f)));
    }
    await rm(profiles, { recursive: true, force: true });
  }, 180_000);
});
