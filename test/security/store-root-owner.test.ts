import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { kilnBinFor } from '../helpers/rootless-user.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * A store root another user controls is refused, not used: it could point
 * tmp/ (swept at every open) or any other directory of the store at the
 * files of whoever runs kiln. Inside a store kiln owns, no directory is
 * reached through a symbolic link or when another user owns it. The suite
 * runs as root; "another user" is nobody (65534).
 */
const SOURCES = ['store/store', 'store/store-dirs', 'cli/store-from-options', 'builder/build'];
const NOBODY = 65534;

let t: Awaited<ReturnType<typeof tempDir>>;
let victim: string;
beforeAll(async () => rebuildIfStale(SOURCES));
beforeEach(async () => {
  t = await tempDir('kiln-root-owner-');
  // a directory everyone may write, as /tmp
  chmodSync(t.path, 0o1777);
  victim = join(t.path, 'victim');
  mkdirSync(join(victim, 'sub'), { recursive: true });
  writeFileSync(join(victim, 'keep.txt'), 'important\n');
  writeFileSync(join(victim, 'sub', 'y'), 'x\n');
  chmodSync(victim, 0o755);
});
afterEach(async () => t.cleanup());

/** The victim as it was made: both files, the same text, mode 0755, still root's. */
function expectVictimUntouched(): void {
  expect(readdirSync(victim).sort()).toEqual(['keep.txt', 'sub']);
  expect(readFileSync(join(victim, 'keep.txt'), 'utf8')).toBe('important\n');
  expect(readFileSync(join(victim, 'sub', 'y'), 'utf8')).toBe('x\n');
  const st = statSync(victim);
  expect(st.mode & 0o7777).toBe(0o755);
  expect(st.uid).toBe(0);
}

/** What nobody plants: a directory of its own, with `tmp` a link to the victim. */
function plantForeignStore(): string {
  const store = join(t.path, 'store');
  mkdirSync(store);
  symlinkSync(victim, join(store, 'tmp'));
  chownSync(store, NOBODY, NOBODY);
  lchownSync(join(store, 'tmp'), NOBODY, NOBODY);
  return store;
}

describe('the store root must be the user\'s own', () => {
  it.each([['images'], ['build']])('a root owned by another user is refused by `kiln %s` before anything in it is touched', async (command) => {
    const store = plantForeignStore();
    const ctx = join(t.path, 'ctx');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM scratch\n');
    const r = await runKiln(['--root', store, ...(command === 'build' ? ['build', '-q', ctx] : [command])]);
    expect(r.stderr).toBe(`kiln: store root ${store} is owned by uid ${NOBODY}, not by uid 0 that runs kiln: use a --root of your own\n`);
    expect(r.code).toBe(1);
    expectVictimUntouched();
    expect(lstatSync(join(store, 'tmp')).isSymbolicLink()).toBe(true);
    expect(statSync(store).mode & 0o777).toBe(0o755);
  });

  it.each([['tmp'], ['blobs'], ['meta'], ['cache']])('a store directory %s that is a symbolic link is refused, not followed', async (name) => {
    const store = join(t.path, 'own');
    mkdirSync(store, { mode: 0o700 });
    symlinkSync(victim, join(store, name));
    const r = await runKiln(['--root', store, 'images']);
    expect(r.stderr).toBe(`kiln: store directory ${join(store, name)} is a symbolic link, which kiln does not follow inside a store: remove it, or use a --root of your own\n`);
    expect(r.code).toBe(1);
    expectVictimUntouched();
  });

  it('a store directory owned by another user is refused', async () => {
    const store = join(t.path, 'own');
    mkdirSync(join(store, 'tmp'), { recursive: true, mode: 0o700 });
    chownSync(join(store, 'tmp'), NOBODY, NOBODY);
    const r = await runKiln(['--root', store, 'images']);
    expect(r.stderr).toBe(`kiln: store directory ${join(store, 'tmp')} is owned by uid ${NOBODY}, not by uid 0 that runs kiln: use a --root of your own\n`);
    expect(r.code).toBe(1);
  });

  it('a root given as a symbolic link is resolved once and used when the directory it names is the user\'s', async () => {
    const real = join(t.path, 'real');
    mkdirSync(real, { mode: 0o700 });
    const link = join(t.path, 'link');
    symlinkSync(real, link);
    const r = await runKiln(['--root', link, 'images']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(existsSync(join(real, 'index.json'))).toBe(true);

    // the same link to nobody's directory: the resolved path is what is refused
    const theirs = join(t.path, 'theirs');
    mkdirSync(theirs);
    chownSync(theirs, NOBODY, NOBODY);
    const link2 = join(t.path, 'link2');
    symlinkSync(theirs, link2);
    const refused = await runKiln(['--root', link2, 'images']);
    expect(refused.stderr).toBe(`kiln: store root ${theirs} is owned by uid ${NOBODY}, not by uid 0 that runs kiln: use a --root of your own\n`);
    expect(readdirSync(theirs)).toEqual([]);
  });

  it('a link another user planted in the shared directory is not followed, and a shared directory is never taken as the store', async () => {
    // nobody's link to root's victim: kiln would chmod it, sweep its tmp/ and fill it
    mkdirSync(join(victim, 'tmp'));
    writeFileSync(join(victim, 'tmp', 'important'), 'x\n');
    const planted = join(t.path, 'kiln-store');
    symlinkSync(victim, planted);
    lchownSync(planted, NOBODY, NOBODY);
    const r = await runKiln(['--root', planted, 'images']);
    expect(r.stderr).toBe(`kiln: --root: ${planted} is a symlink another user (uid ${NOBODY}) made in a shared directory; kiln does not follow it (name what it points to, or write somewhere else)\n`);
    expect(r.code).toBe(1);
    expect(readdirSync(victim).sort()).toEqual(['keep.txt', 'sub', 'tmp']);
    expect(readFileSync(join(victim, 'tmp', 'important'), 'utf8')).toBe('x\n');
    expect(statSync(victim).mode & 0o7777).toBe(0o755);

    // nobody's link to the shared directory itself, and the shared directory named directly: it stays 1777
    const toShared = join(t.path, 'kiln-store2');
    symlinkSync(t.path, toShared);
    lchownSync(toShared, NOBODY, NOBODY);
    expect((await runKiln(['--root', toShared, 'images'])).code).toBe(1);
    const direct = await runKiln(['--root', t.path, 'images']);
    expect(direct.stderr).toContain(`kiln: store root ${t.path} is a shared directory (sticky): kiln does not take it as its store`);
    expect(direct.code).toBe(1);
    expect(statSync(t.path).mode & 0o7777).toBe(0o1777);
  });

  it('a user other than root uses a store of its own, rootless (the check is on the effective uid in its user namespace)', () => {
    const home = join(t.path, 'home');
    mkdirSync(home, { mode: 0o700 });
    chownSync(home, NOBODY, NOBODY);
    const run = (root: string) =>
      spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '--', process.execPath, kilnBinFor(), '--root', root, 'images'], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: home } });
    // kiln runs rootless here: in its user namespace nobody is uid 0, and owns the store it made
    const own = run(join(home, 'store'));
    expect(own.stderr).not.toMatch(/store/);
    expect(own.status).toBe(0);
    expect(statSync(join(home, 'store')).uid).toBe(NOBODY);

    // and nobody does not take over root's store either
    const rootsStore = join(t.path, 'roots');
    mkdirSync(rootsStore, { mode: 0o755 });
    const other = run(rootsStore);
    // root is not mapped into nobody's namespace: it owns the directory as the overflow id
    expect(other.stderr).toContain(`kiln: store root ${rootsStore} is owned by uid 65534 in kiln's user namespace, not by nobody (uid ${NOBODY}) that runs kiln: use a --root of your own\n`);
    expect(other.status).toBe(1);
    expect(readdirSync(rootsStore)).toEqual([]);
  });
});
