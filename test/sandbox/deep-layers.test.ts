import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runSandbox } from '../../src/sandbox/sandbox.js';
import { maxLayers, mountReadonlyLayers, mountsUnder, unmount } from '../../src/sandbox/mount.js';
import type { KilnError } from '../../src/errors/index.js';
import { leftovers, makeEnv, type TestEnv } from './fixtures.js';

/**
 * Images deeper than one overlay mount holds (~200 lowers in a page of
 * options): the deepest layers are folded into a read-only overlay under
 * the top one. Synthesised snapshot dirs stand in for the store's: layer i
 * adds /l/<i> and rewrites /shared; layer 150 deletes /l/10 with a whiteout.
 */

let env: TestEnv;
let layers: string[];
const DEPTH = 300;

function makeLayers(n: number, base: string): string[] {
  const dirs: string[] = [];
  for (let i = 0; i < n; i++) {
    const d = join(base, `s${i}`);
    mkdirSync(join(d, 'l'), { recursive: true });
    writeFileSync(join(d, 'l', String(i)), `${i}\n`);
    writeFileSync(join(d, 'shared'), `${i}\n`);
    if (i === 150) execFileSync('mknod', [join(d, 'l', '10'), 'c', '0', '0']);
    dirs.push(d);
  }
  // topmost first
  return dirs.reverse();
}

beforeAll(() => {
  env = makeEnv();
  layers = [...makeLayers(DEPTH, join(env.base, 'deep')), env.lower];
});
afterAll(() => env.cleanup());

describe('deep layer stacks', () => {
  test(`a RUN over ${DEPTH + 1} layers sees every layer in order, whiteouts applied, and its diff is only its own`, async () => {
    const lines: string[] = [];
    const r = await runSandbox(
      { storeRoot: env.root, lowerdirs: layers, args: ['/bin/sh', '-c', 'ls /l | wc -l; cat /shared; cat /l/0 /l/299; [ -e /l/10 ] && echo has10 || echo no10; echo new > /made'], env: [], workdir: '/', network: 'none', onOutput: (_s, l) => lines.push(l) },
      async ({ upperdir, exclude }) => readdirSync(upperdir).filter((n) => !exclude.includes(n)).sort(),
    );
    expect(r.exitCode).toBe(0);
    expect(lines).toEqual([String(DEPTH - 1), '299', '0', '299', 'no10']);
    expect(r.collected).toEqual(['made']);
    const l = await leftovers(env.root);
    expect(l.mounts).toEqual([]);
    expect(l.tmp).toEqual([]);
  });

  test('a read-only merged view of the same stack, with one mount point to release', () => {
    const target = join(env.base, 'ro');
    mkdirSync(target);
    mountReadonlyLayers(layers, target);
    try {
      expect(readFileSync(join(target, 'shared'), 'utf8')).toBe('299\n');
      expect(readdirSync(join(target, 'l'))).toHaveLength(DEPTH - 1);
      expect(existsSync(join(target, 'l', '10'))).toBe(false);
      expect(existsSync(join(target, 'bin', 'busybox'))).toBe(true);
      expect(mountsUnder(env.base)).toEqual([target]);
    } finally {
      unmount(target);
    }
    expect(existsSync(`${target}.base`)).toBe(false);
  });

  test('beyond what two mounts hold, a clear error names the count and the limit', async () => {
    const limit = maxLayers(200);
    const tooMany = makeLayers(limit + 20, join(env.base, 'deeper'));
    const err = (await runSandbox({ storeRoot: env.root, lowerdirs: tooMany, args: ['true'], env: [], workdir: '/', network: 'none' }).catch((e: unknown) => e)) as KilnError;
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toMatch(new RegExp(`^the image has ${limit + 20} layers; kiln can stack at most \\d+ in one overlay mount$`));
    expect(err.hint).toMatch(/squash layers/);
    const l = await leftovers(env.root);
    expect(l.mounts).toEqual([]);
  });
});
