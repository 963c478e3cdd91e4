import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KILN_BIN, rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * The live display seen in a real terminal: kiln runs inside a detached tmux
 * session (its own server socket), and the screen is read with capture-pane.
 */
let b: Bench;
const SOCKET = `kiln-live-${process.pid}`;
const started: string[] = [];
const tmux = (...args: string[]): string => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });

beforeAll(async () => {
  await rebuildIfStale(['cli/progress/live', 'cli/progress/render', 'cli/commands/build']);
  b = await bench();
  await b.release();
}, 180_000);
afterAll(async () => {
  // Let every build started in a window finish on its own (each is short) before the windows go:
  // a build killed with its terminal would still be unmounting its RUN when the store is removed.
  for (let i = 0; i < 1200 && started.some((rc) => !existsSync(rc)); i++) await new Promise((r) => setTimeout(r, 50));
  try {
    tmux('kill-server');
  } catch {
    // no session left
  }
  // and if one did not finish, wait for that kiln process (its argv holds the store path) to exit
  const running = (): boolean => {
    try {
      return execFileSync('pgrep', ['-f', '--', b.root], { encoding: 'utf8' }).trim() !== '';
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 400 && running(); i++) await new Promise((r) => setTimeout(r, 50));
  await runKiln(['--root', b.root, 'df']);
  await b.cleanup();
}, 120_000);

const screen = (name: string): string => tmux('capture-pane', '-p', '-t', name);

async function until(what: string, f: () => boolean): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (f()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Starts kiln in a tmux window of the given size; its exit code lands in `rc`. */
function start(name: string, cols: number, args: string[], env: string): string {
  const rc = path.join(b.dir, `${name}.rc`);
  const cmd = `${env} ${JSON.stringify(process.execPath)} ${JSON.stringify(KILN_BIN)} --root ${JSON.stringify(b.root)} ${args.map((a) => JSON.stringify(a)).join(' ')}; echo $? > ${rc}; sleep 60`;
  started.push(rc);
  tmux('new-session', '-d', '-s', name, '-x', String(cols), '-y', '30', cmd);
  return rc;
}

describe('--progress tty in a terminal', () => {
  it('redraws a running step in place with a running timer, then collapses it to DONE', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN sleep 3\nRUN echo after\n` });
    const rc = start('live', 100, ['build', '--no-cache', '--progress', 'tty', ctx], 'TERM=xterm-256color');
    const timer = (s: string): number | undefined => {
      const m = /RUN sleep 3\s+(\d+\.\d)s\s*$/m.exec(s);
      return m ? Number(m[1]) : undefined;
    };
    await until('the running step', () => (timer(screen('live')) ?? 0) >= 0.5);
    const first = screen('live');
    const t1 = timer(first)!;
    await until('the timer to move', () => (timer(screen('live')) ?? 0) >= t1 + 1);
    const second = screen('live');
    // the same single line, redrawn: never one line per tick
    expect(second.split('\n').filter((l) => l.includes('RUN sleep 3'))).toHaveLength(1);
    expect(first.split('\n').filter((l) => l.includes('RUN sleep 3'))).toHaveLength(1);
    expect(timer(second)!).toBeGreaterThan(t1);
    await until('the build to end', () => screen('live').includes('steps ran'));
    const done = screen('live');
    expect(done).toMatch(/RUN sleep 3 {2}DONE \d+\.\ds/);
    expect(done).toMatch(/RUN echo after {2}DONE/);
    expect(done).not.toMatch(/RUN sleep 3\s+\d+\.\ds\s*$/m);
    // the summary is printed before kiln has closed its store and exited
    await until('kiln to exit', () => existsSync(rc) && readFileSync(rc, 'utf8').trim() !== '');
    expect((await readFile(rc, 'utf8')).trim()).toBe('0');
  }, 60_000);

  it('fits a narrow terminal: no line wider than the window', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN sleep 2 && echo a-rather-long-command-line-that-does-not-fit-in-forty-columns\n` });
    start('narrow', 40, ['build', '--no-cache', '--progress', 'tty', ctx], 'TERM=xterm-256color');
    await until('the running step', () => /\d+\.\ds\s*$/m.test(screen('narrow')));
    const s = screen('narrow');
    for (const l of s.split('\n')) expect([...l].length).toBeLessThanOrEqual(40);
    // cut lines end with an ellipsis rather than wrapping onto the next row
    expect(s).toContain('…');
  }, 60_000);

  it('falls back to plain lines when TERM=dumb', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo plain-out\n` });
    const rc = start('dumb', 100, ['build', '--no-cache', '--progress', 'tty', ctx], 'TERM=dumb');
    await until('the build to end', () => screen('dumb').includes('steps ran'));
    const s = screen('dumb');
    // one stage: buildx's label has no stage name, and the step counts within the stage
    expect(s).toMatch(/\[2\/2\] RUN echo plain-out/);
    expect(s).toMatch(/\[2\/2\] plain-out/);
    // the summary is printed before kiln has closed its store and exited
    await until('kiln to exit', () => existsSync(rc) && readFileSync(rc, 'utf8').trim() !== '');
    expect((await readFile(rc, 'utf8')).trim()).toBe('0');
  }, 60_000);
});
