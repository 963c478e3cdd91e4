import { spawn } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KILN_BIN } from '../helpers/kiln-cli.js';
import { bench, BASE, type Bench } from './helpers.js';
import { Store } from '../../src/store/store.js';
import { fsck } from '../../src/store/fsck.js';
import { liveLeftovers } from '../../src/sandbox/scratch.js';

/**
 * The reliability run of issue 6: many builds with RUN through bin/kiln, some
 * interrupted with SIGINT mid-RUN and some killed with SIGKILL, then checks
 * that nothing leaked: mounts, runc containers, tmp/ leftovers, store damage.
 */
let b: Bench;

beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

function startBuild(ctx: string, args: string[] = []): { done: Promise<number>; waitFor(text: string): Promise<void>; kill(sig: NodeJS.Signals): void; stderr(): string } {
  const child = spawn(process.execPath, [KILN_BIN, '--root', b.root, 'build', '--progress', 'plain', ...args, ctx], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  const waiters: Array<{ text: string; resolve: () => void }> = [];
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
    for (const w of waiters.splice(0)) {
      if (err.includes(w.text)) w.resolve();
      else waiters.push(w);
    }
  });
  return {
    done: new Promise((resolve) => child.on('close', (code, signal) => resolve(code ?? (signal ? 128 : -1)))),
    waitFor: (text) => (err.includes(text) ? Promise.resolve() : new Promise((resolve) => waiters.push({ text, resolve }))),
    kill: (sig) => child.kill(sig),
    stderr: () => err,
  };
}

async function kilnMounts(): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').filter((l) => l.includes(b.root));
}

describe('interrupted builds leave nothing behind', () => {
  it('100 builds with RUN, 10 interrupted by SIGINT and 2 killed by SIGKILL', async () => {
    let completed = 0;
    for (let i = 0; i < 100; i++) {
      const interrupt = i % 10 === 3;
      const kill = i === 50 || i === 80;
      // each build is new (a build arg), so its RUN really runs
      const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nARG N\nRUN echo start-$N && ${interrupt || kill ? 'sleep 30' : 'true'} && echo $N > /n.txt\n` });
      const run = startBuild(ctx, ['--build-arg', `N=${i}`, '-t', `localhost/loop:${i}`]);
      if (interrupt || kill) {
        await run.waitFor(`start-${i}`);
        run.kill(kill ? 'SIGKILL' : 'SIGINT');
        const code = await run.done;
        expect(code).not.toBe(0);
      } else {
        expect(await run.done, run.stderr()).toBe(0);
        completed++;
      }
    }
    expect(completed).toBe(88);
    // a build after the kills, alone on the store, sweeps what the killed processes left
    await b.release();
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo after > /after.txt\n` });
    expect(await startBuild(ctx, ['-t', 'localhost/loop:after']).done).toBe(0);
    expect(await kilnMounts()).toEqual([]);
    const leftovers = (await readdir(path.join(b.root, 'tmp'))).filter((n) => n !== 'partial');
    expect(leftovers).toEqual([]);
    expect(await b.read('localhost/loop:after', '/after.txt')).toBe('after\n');
    const store = await Store.open(b.root);
    try {
      const report = await fsck(store, { leftovers: liveLeftovers });
      expect(report.problems).toEqual([]);
    } finally {
      await store.close();
    }
  }, 600_000);
});
