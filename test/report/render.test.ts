import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { renderReportHtml, renderReportSvg, reportFormat, writeReport } from '../../src/report/index.js';
import { isKilnError } from '../../src/errors/index.js';
import { checkWellFormed } from './xml-check.js';
import { failing, multiStage } from './fixtures.js';

const escText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');

/** Anything that would make the browser fetch: scripts, styles, images, fonts from elsewhere. */
function externalRefs(doc: string): string[] {
  const found: string[] = [];
  for (const m of doc.matchAll(/\b(?:src|href|xlink:href)\s*=\s*["']([^"']*)["']/g)) if (!m[1]!.startsWith('#')) found.push(m[0]);
  for (const m of doc.matchAll(/url\(\s*['"]?([^)'"]*)/g)) if (!m[1]!.startsWith('#')) found.push(m[0]);
  for (const m of doc.matchAll(/@import|<link\b|<iframe\b|<img\b|<object\b|fetch\(|XMLHttpRequest/g)) found.push(m[0]);
  return found;
}

describe('build report: SVG', () => {
  it('is a well-formed standalone SVG with every step, the CACHED marks and the critical path', () => {
    const svg = renderReportSvg(multiStage({ graph: true, timings: true }));
    expect(checkWellFormed(svg, 'xml').root).toBe('svg');
    expect(svg).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const t of ['RUN make -C /src', 'COPY package.json /src/', 'CMD ["app"]', 'COPY --from=builder /src/app /usr/bin/app']) {
      expect(svg).toContain(escText(t));
    }
    // a group per step, the critical ones flagged, cached ones drawn with the hatch and labelled
    expect(svg.match(/<g class="step[^"]*" data-step="/g)).toHaveLength(11);
    expect([...svg.matchAll(/data-step="(\d+)"[^>]*data-critical="true"/g)].map((m) => Number(m[1]))).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    expect(svg.match(/data-status="cached"/g)).toHaveLength(3);
    expect(svg).toContain('>CACHED RUN install-deps<');
    expect(svg).toContain('class="critical-link"');
    for (const lane of ['deps', 'builder', 'stage 2', 'build']) expect(svg).toContain(`>${lane}</text>`);
    expect(externalRefs(svg)).toEqual([]);
  });

  it('stays well-formed whatever the steps and logs contain', () => {
    const svg = renderReportSvg(failing());
    checkWellFormed(svg, 'xml');
    expect(svg).toContain('RUN ./build.sh &amp;&amp; &lt;oops&gt; &quot;quoted&quot; &amp; done');
    expect(svg).toContain('FAILED after');
  });
});

describe('build report: HTML', () => {
  it('is one self-contained page with the summary, timeline, critical path and step table', () => {
    const html = renderReportHtml(multiStage({ graph: true, timings: true }));
    checkWellFormed(html, 'html');
    expect(externalRefs(html)).toEqual([]);
    expect(html).toContain('<style>');
    expect(html).toContain('<script>');
    for (const id of ['time', 'timeline', 'critical-path', 'slowest', 'steps', 'warnings']) expect(html).toContain(`id="${id}"`);
    // every step has a row and a bar
    for (let i = 1; i <= 11; i++) {
      expect(html).toContain(`<tr id="step-${i}"`);
      expect(html).toMatch(new RegExp(`<g class="step[^"]*" data-step="${i}"`));
    }
    expect(html.match(/<span class="badge cached">CACHED<\/span>/g)!.length).toBeGreaterThanOrEqual(3);
    expect(html.match(/<li data-critical-step="/g)).toHaveLength(8);
    expect(html).toContain('stage 2 waits for builder');
    expect(html).toContain('built localhost:5000/app:1 in 5.50 s');
  });

  it('leads with the failure, the failing step and its last output', () => {
    const html = renderReportHtml(failing());
    checkWellFormed(html, 'html');
    expect(html).toContain('id="failure"');
    expect(html).toContain('FAILED after 935 ms: RUN exited with status 2');
    expect(html).toContain('compiling &lt;main&gt;');
    expect(html).not.toContain('\u0007');
  });
});

describe('build report: writeReport', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'kiln-report-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('chooses the format by the file extension', async () => {
    expect(reportFormat('a/b.html')).toBe('html');
    expect(reportFormat('B.HTM')).toBe('html');
    expect(reportFormat('x.svg')).toBe('svg');
    const events = multiStage({ graph: true });
    await writeReport(events, path.join(dir, 'r.html'));
    await writeReport(events, path.join(dir, 'r.svg'));
    expect(await readFile(path.join(dir, 'r.html'), 'utf8')).toMatch(/^<!DOCTYPE html>/);
    expect(await readFile(path.join(dir, 'r.svg'), 'utf8')).toMatch(/^<\?xml/);
  });

  it('refuses other extensions before writing anything', async () => {
    for (const f of ['r.png', 'report', 'r.html.txt']) {
      let err: unknown;
      try {
        await writeReport(multiStage(), path.join(dir, f));
      } catch (e) {
        err = e;
      }
      expect(isKilnError(err) && err.code).toBe('USAGE');
      await expect(stat(path.join(dir, f))).rejects.toThrow(/ENOENT/);
    }
  });

  it('says which file it could not write', async () => {
    await expect(writeReport(multiStage(), path.join(dir, 'missing', 'r.html'))).rejects.toThrow(/cannot write the build report .*missing\/r\.html/);
  });
});
