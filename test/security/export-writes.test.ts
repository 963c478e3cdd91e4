import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildIfStale, runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * kiln runs as root and writes its outputs onto the host: into directories and beside files that
 * an image's content or another user may have filled with symlinks. Nothing is ever created,
 * replaced or chmod'ed through one, and nothing outside the output is touched. (The tests plant
 * the symlinks themselves, as root, where another user could.)
 */
let dir: string;
let cleanup: () => Promise<void>;
let root: string;

function kiln(args: string[]): Promise<KilnRun> {
  return runKiln(['--root', root, ...args]);
}

/** A build context of `files` (a string is a file, `{ link }` a symlink, `{}` an empty directory). */
function context(name: string, files: Record<string, string | { link: string } | Record<string, never>>): string {
  const ctx = join(dir, name);
  for (const [p, v] of Object.entries(files)) {
    const at = join(ctx, p);
    mkdirSync(join(at, '..'), { recursive: true });
    if (typeof v === 'string') writeFileSync(at, v);
    else if ('link' in v) symlinkSync(v.link, at);
    else mkdirSync(at, { recursive: true });
  }
  return ctx;
}

/** A directory and a file only root may read, which no export may change. */
function victims(name: string): { dir: string; file: string } {
  const d = join(dir, name);
  mkdirSync(d, { mode: 0o700 });
  chmodSync(d, 0o700);
  const file = join(d, 'secret');
  writeFileSync(file, 'ORIGINAL', { mode: 0o600 });
  return { dir: d, file };
}

function expectUntouched(v: { dir: string; file: string }): void {
  expect(readdirSync(v.dir)).toEqual(['secret']);
  expect(statSync(v.dir).mode & 0o7777).toBe(0o700);
  expect(statSync(v.file).mode & 0o7777).toBe(0o600);
  expect(readFileSync(v.file, 'utf8')).toBe('ORIGINAL');
}

async function build(ctx: string, ...args: string[]): Promise<KilnRun> {
  const r = await kiln(['build', '-q', ...args, ctx]);
  expect(r.stderr, r.stderr).not.toContain('kiln:');
  expect(r.code).toBe(0);
  return r;
}

beforeAll(async () => {
  await rebuildIfStale(['export/local', 'fs/write-at']);
  ({ path: dir, cleanup } = await tempDir('kiln-export-writes-'));
  root = join(dir, 'store');
});
afterAll(async () => cleanup());

describe('-o type=local', () => {
  it('replaces a symlink an earlier image left in the destination instead of writing through it', async () => {
    const host = victims('host-r1');
    const dest = join(dir, 'out-r1');
    // the first image holds /x -> a host directory; the second a directory /x with a file in it
    await build(context('ctx-r1a', { Dockerfile: 'FROM scratch\nCOPY d/ /\n', 'd/x': { link: host.dir } }), '-o', `type=local,dest=${dest}`);
    expect(lstatSync(join(dest, 'x')).isSymbolicLink()).toBe(true);
    await build(context('ctx-r1b', { Dockerfile: 'FROM scratch\nCOPY d/ /\n', 'd/x/pwned': 'pwned', 'd/x/sub/deeper': 'deep' }), '-o', `type=local,dest=${dest}`);

    expectUntouched(host);
    expect(lstatSync(join(dest, 'x')).isDirectory()).toBe(true);
    expect(readFileSync(join(dest, 'x', 'pwned'), 'utf8')).toBe('pwned');
    expect(readFileSync(join(dest, 'x', 'sub', 'deeper'), 'utf8')).toBe('deep');
  });

  it('neither writes nor chmods through symlinks planted in the destination, and keeps what else is there', async () => {
    const planted = victims('host-planted');
    const other = victims('host-other');
    const dest = join(dir, 'out-planted');
    mkdirSync(dest);
    writeFileSync(join(dest, 'keep.txt'), 'mine');
    symlinkSync(planted.dir, join(dest, 'bin'));
    symlinkSync(other.file, join(dest, 'app.conf'));
    symlinkSync(other.dir, join(dest, 'gone'));
    const ctx = context('ctx-planted', { Dockerfile: 'FROM scratch\nCOPY d/ /\n', 'd/bin/tool': '#!/bin/true\n', 'd/app.conf': 'conf', 'd/gone': { link: 'elsewhere' } });
    chmodSync(join(ctx, 'd', 'bin'), 0o777);
    chmodSync(join(ctx, 'd', 'bin', 'tool'), 0o4755);
    await build(ctx, '-o', `type=local,dest=${dest}`);

    expectUntouched(planted);
    expectUntouched(other);
    // the image's entries replaced the symlinks: a real directory with the image's mode, a new file, the image's link
    expect(lstatSync(join(dest, 'bin')).isDirectory()).toBe(true);
    expect(lstatSync(join(dest, 'bin')).mode & 0o7777).toBe(0o777);
    expect(lstatSync(join(dest, 'bin', 'tool')).mode & 0o7777).toBe(0o4755);
    expect(lstatSync(join(dest, 'app.conf')).isFile()).toBe(true);
    expect(readFileSync(join(dest, 'app.conf'), 'utf8')).toBe('conf');
    expect(lstatSync(join(dest, 'gone')).isSymbolicLink()).toBe(true);
    // as BuildKit's local exporter, what the image does not name stays
    expect(readFileSync(join(dest, 'keep.txt'), 'utf8')).toBe('mine');
  });

  it('refuses a destination that is itself a symlink, naming it', async () => {
    const target = victims('host-dest-link');
    const dest = join(dir, 'out-link');
    symlinkSync(target.dir, dest);
    const r = await kiln(['build', '-q', '-o', `type=local,dest=${dest}`, context('ctx-dest-link', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' })]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`kiln: -o type=local: the destination ${dest} is a symlink; name the directory it points to\n`);
    expectUntouched(target);
  });
});
