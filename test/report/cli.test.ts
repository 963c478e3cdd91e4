import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bench, BASE, type Bench } from '../builder/helpers.js';
import { runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { checkWellFormed } from './xml-check.js';

/** `kiln build --report` through bin/kiln (dist/ is built by `npm test` before vitest runs). */
let b: Bench;

function kiln(args: string[]): Promise<KilnRun> {
  return runKiln(['--root', b.root, ...args]);
}

beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

describe('kiln build --report', () => {
  it('writes an HTML report, and an SVG one, of a successful build', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY a.txt /a.txt\nENV A=1\n`, 'a.txt': 'a' });
    const html = path.join(b.dir, 'ok.html');
    const r = await kiln(['build', '--progress', 'plain', '-t', 'localhost/report/cli:1', '--report', html, ctx]);
    expect(r.stderr).not.toContain('kiln:');
    expect(r.code).toBe(0);
    const page = await readFile(html, 'utf8');
    checkWellFormed(page, 'html');
    expect(page).toContain('built localhost/report/cli:1');
    expect(page).toContain('COPY a.txt /a.txt');

    const svg = path.join(b.dir, 'again.svg');
    const again = await kiln(['build', '--progress', 'quiet', '-t', 'localhost/report/cli:1', '--report', svg, ctx]);
    expect(again.code).toBe(0);
    const doc = await readFile(svg, 'utf8');
    expect(checkWellFormed(doc, 'xml').root).toBe('svg');
    expect(doc).toContain('>CACHED');
  });

  it('writes the report of a failed build too, and still fails with the build error', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo about to fail; exit 3\n` });
    const html = path.join(b.dir, 'failed.html');
    const r = await kiln(['build', '--progress', 'plain', '--report', html, ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exit|status|3/);
    const page = await readFile(html, 'utf8');
    expect(page).toContain('id="failure"');
    expect(page).toContain('about to fail');
    expect(page).toContain('RUN echo about to fail; exit 3');
  });

  it('refuses a report name it cannot write before building anything', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN touch /never\n` });
    const png = path.join(b.dir, 'r.png');
    const r = await kiln(['build', '--progress', 'plain', '--report', png, ctx]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('must end in .html or .svg');
    expect(r.stdout).not.toContain('RUN touch');
    await expect(stat(png)).rejects.toThrow(/ENOENT/);
  });
});
