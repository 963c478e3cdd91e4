import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * An image's labels, environment, history and config strings are written by
 * whoever made the image. `kiln inspect` and `kiln images` print them for a
 * person at a terminal: an escape sequence in them must arrive escaped, never
 * as raw bytes that retitle the window, move the cursor or hide lines.
 */

const ESC = '\x1b';
// sets the window title, clears the screen, then a C1 CSI and a bidi override
const EVIL = `${ESC}]0;pwned\x07${ESC}[2J\u009b31m\u202eevil`;

let b: Bench;
const REF = 'localhost/sec/terminal:1';

beforeAll(async () => {
  await rebuildIfStale(['cli/main', 'cli/commands/inspect', 'cli/commands/images', 'errors/printable']);
  b = await bench();
  const ctx = await b.context({
    Dockerfile: `FROM ${BASE}
LABEL note="${EVIL}"
ENV GREETING="${EVIL}"
RUN true "${EVIL}"
WORKDIR "/w${ESC}[1A"
USER "1000${ESC}[8m"
`,
  });
  await b.build(ctx, { tags: [REF] });
  await b.release();
});
afterAll(async () => b.cleanup());

function expectNoControls(out: string): void {
  // line breaks between fields are kiln's own; nothing else below 0x20, no DEL, no C1, no bidi controls
  expect(out).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
}

describe('text from an image reaches the terminal escaped', () => {
  test('kiln inspect', async () => {
    const r = await runKiln(['--root', b.root, 'inspect', REF]);
    expect(r.code, r.stderr).toBe(0);
    expectNoControls(r.stdout);
    expect(r.stdout).toContain('note=\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\u202eevil');
    expect(r.stdout).toContain('GREETING=\\x1b]0;pwned');
    expect(r.stdout).toMatch(/RUN .*true .*\\x1b\]0;pwned/);
  });

  test('kiln images', async () => {
    const r = await runKiln(['--root', b.root, 'images']);
    expect(r.code, r.stderr).toBe(0);
    expectNoControls(r.stdout);
    expect(r.stdout).toContain('localhost/sec/terminal');
  });

  test('--json keeps the exact values (JSON escapes them itself)', async () => {
    const r = await runKiln(['--root', b.root, 'inspect', '--json', REF]);
    expect(r.code, r.stderr).toBe(0);
    expectNoControls(r.stdout);
    const j = JSON.parse(r.stdout) as { config: { config: { Labels: Record<string, string> } } };
    expect(j.config.config.Labels['note']).toBe(EVIL);
  });
});
