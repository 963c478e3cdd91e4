import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { openInRoot } from '../../src/fs/open-in-root.js';
import { hostLookup, resolveInTree } from '../../src/fs/resolve-in-root.js';
import { runSandbox } from '../../src/sandbox/sandbox.js';
import { leftovers, makeEnv, type TestEnv } from '../sandbox/fixtures.js';

/**
 * The in-root resolver: the walk (COPY, the sandbox's own lookups) and the
 * kernel's openat2 (RUN --mount sources) follow the same rules, and neither
 * ever names a file outside the root, whatever the tree holds or however it
 * changes while it is being resolved.
 */

const SECRET = 'HOST-SECRET-7d1f';
let base: string;
let hostDir: string;
let root: string;

beforeAll(() => {
  base = mkdtempSync(join(tmpdir(), 'kiln-resolve-'));
  hostDir = join(base, 'host');
  mkdirSync(hostDir);
  writeFileSync(join(hostDir, 'secret.txt'), SECRET);
  root = join(base, 'root');
  // The same absolute path exists inside the root, holding "inside": a chroot resolution must find this one.
  mkdirSync(join(root, hostDir), { recursive: true });
  writeFileSync(join(root, hostDir, 'secret.txt'), 'inside');
  mkdirSync(join(root, 'd/e'), { recursive: true });
  writeFileSync(join(root, 'd/e/f.txt'), 'f');
  symlinkSync(join(hostDir, 'secret.txt'), join(root, 'abs'));
  symlinkSync('/', join(root, 'root-link'));
  symlinkSync('../../../../../../../../..', join(root, 'd/e/up'));
  symlinkSync(hostDir, join(root, 'parent'));
  symlinkSync('d/e/up/parent', join(root, 'chain'));
  symlinkSync('e/f.txt', join(root, 'd/rel-ok'));
  symlinkSync('loop2', join(root, 'loop1'));
  symlinkSync('loop1', join(root, 'loop2'));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

/** What openInRoot opened, as a path relative to the root ("" = the root), or the error code. */
function kernel(path: string, chroot: boolean): string {
  try {
    const r = openInRoot(root, path, { chroot, label: 'test root' });
    try {
      const real = readlinkSync(`/proc/self/fd/${r.fd}`);
      if (real === root) return '';
      expect(real.startsWith(`${root}/`)).toBe(true);
      return real.slice(root.length + 1);
    } finally {
      closeSync(r.fd);
    }
  } catch (e) {
    if (isKilnError(e)) return e.code;
    throw e;
  }
}

function walk(path: string, chroot: boolean): string {
  try {
    return resolveInTree(hostLookup(root), path, { chroot, followFinal: true, label: 'test root' });
  } catch (e) {
    if (isKilnError(e)) return e.code;
    throw e;
  }
}

const CASES: Array<[path: string, chroot: string, context: string]> = [
  ['abs', '$HOST/secret.txt', 'UNSAFE_PATH'],
  ['root-link/$HOST/secret.txt', '$HOST/secret.txt', 'UNSAFE_PATH'],
  ['d/e/up/$HOST/secret.txt', '$HOST/secret.txt', 'UNSAFE_PATH'],
  ['parent/secret.txt', '$HOST/secret.txt', 'UNSAFE_PATH'],
  ['chain/secret.txt', '$HOST/secret.txt', 'UNSAFE_PATH'],
  ['../../../$HOST/secret.txt', '$HOST/secret.txt', 'UNSAFE_PATH'],
  ['d/rel-ok', 'd/e/f.txt', 'd/e/f.txt'],
  ['/d/./e/../rel-ok', 'd/e/f.txt', 'd/e/f.txt'],
  ['', '', ''],
];

describe('one set of rules: the walk and openat2 agree', () => {
  test.each(CASES)('%s → %s (image) / %s (context)', (path, inImage, inContext) => {
    const p = path.replaceAll('$HOST', hostDir.slice(1));
    const want = (s: string): string => s.replaceAll('$HOST', hostDir.slice(1));
    expect(kernel(p, true)).toBe(want(inImage));
    expect(walk(p, true)).toBe(want(inImage));
    expect(kernel(p, false)).toBe(want(inContext));
    expect(walk(p, false)).toBe(want(inContext));
  });

  test('a symlink loop is refused by both', () => {
    expect(kernel('loop1', true)).toBe('UNSAFE_PATH');
    expect(walk('loop1/x', true)).toBe('UNSAFE_PATH');
  });

  test('a missing file is NOT_FOUND for the kernel', () => {
    expect(kernel('d/nope', true)).toBe('NOT_FOUND');
    expect(kernel('abs/below', true)).toBe('NOT_FOUND');
  });
});

/** A process that keeps flipping `link` between an in-root target and host targets, until killed (bounded anyway). */
function swapper(dir: string, targets: string[]): ChildProcess {
  const script = `i=0; while [ $i -lt 200000 ]; do for t in ${targets.map((t) => `'${t}'`).join(' ')}; do ln -sfn "$t" link.new && mv -T link.new link; done; i=$((i+1)); done`;
  return spawn('sh', ['-c', script], { cwd: dir, stdio: 'ignore' });
}

describe('a symlink swapped during resolution never leads out of the root', () => {
  test('openInRoot, 4000 opens against a flipping parent directory', async () => {
    const dir = join(base, 'race');
    mkdirSync(join(dir, 'inner'), { recursive: true });
    writeFileSync(join(dir, 'inner/secret.txt'), 'inside');
    symlinkSync('inner', join(dir, 'link'));
    const child = swapper(dir, ['inner', hostDir, '../../../../../..' + hostDir]);
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 4000; i++) {
        const chroot = i % 2 === 0;
        try {
          const r = openInRoot(dir, 'link/secret.txt', { chroot, label: 'race root' });
          const real = readlinkSync(`/proc/self/fd/${r.fd}`);
          closeSync(r.fd);
          expect(real.startsWith(`${dir}/`)).toBe(true);
          seen.add('opened');
        } catch (e) {
          if (!isKilnError(e)) throw e;
          expect(['UNSAFE_PATH', 'NOT_FOUND']).toContain(e.code);
          seen.add(e.code);
        }
      }
      // the race really happened: both outcomes were observed
      expect(seen.has('opened')).toBe(true);
      expect(seen.size).toBeGreaterThan(1);
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('RUN bind mounts from a tree that changes while RUNs start', () => {
  let env: TestEnv;
  beforeAll(() => {
    env = makeEnv();
  });
  afterAll(() => env.cleanup());

  test('a context-like and an image-like root: 24 RUNs never see the host file', async () => {
    const dir = join(env.base, 'ctx');
    mkdirSync(join(dir, 'inner'), { recursive: true });
    writeFileSync(join(dir, 'inner/secret.txt'), 'inside');
    symlinkSync('inner', join(dir, 'link'));
    const child = swapper(dir, ['inner', hostDir, '../../../../../../..' + hostDir]);
    const outcomes = new Set<string>();
    try {
      for (let i = 0; i < 24; i++) {
        const lines: string[] = [];
        try {
          const r = await runSandbox({
            storeRoot: env.root,
            lowerdirs: [env.lower],
            args: ['/bin/sh', '-c', 'cat /m/secret.txt 2>&1; echo; ls /m 2>&1'],
            env: [],
            workdir: '/',
            network: 'none',
            mounts: [{ type: 'bind', target: '/m', source: { root: dir, path: 'link', chroot: i % 2 === 0, label: 'race root' }, readwrite: i % 3 === 0 }],
            onOutput: (_s, l) => lines.push(l),
          });
          expect(r.exitCode).toBe(0);
          outcomes.add('ran');
        } catch (e) {
          if (!isKilnError(e)) throw e;
          outcomes.add(e.code);
        }
        expect(lines.join('\n')).not.toContain(SECRET);
      }
      expect(outcomes.has('ran')).toBe(true);
      // the pinned sources were unmounted with the RUN's scratch dir
      expect((await leftovers(env.root)).mounts).toEqual([]);
    } finally {
      child.kill('SIGKILL');
    }
  });

  test('an absolute link in a context-like root is refused when the RUN starts', async () => {
    const dir = join(env.base, 'ctx2');
    mkdirSync(dir);
    symlinkSync(join(hostDir, 'secret.txt'), join(dir, 'abs-link'));
    const err = await runSandbox({
      storeRoot: env.root,
      lowerdirs: [env.lower],
      args: ['/bin/cat', '/m'],
      env: [],
      workdir: '/',
      network: 'none',
      mounts: [{ type: 'bind', target: '/m', source: { root: dir, path: 'abs-link', chroot: false, label: 'build context' } }],
    }).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('UNSAFE_PATH');
    expect(isKilnError(err) && err.message).toMatch(/bind mount source for \/m: "abs-link" resolves outside the build context/);
  });
});
