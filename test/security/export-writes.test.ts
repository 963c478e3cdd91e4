import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { chmodSync, chownSync, lchownSync, lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KILN_BIN, rebuildIfStale, runKiln, type KilnRun } from '../helpers/kiln-cli.js';
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

/** A sticky world-writable directory, as /tmp is (mkdir's mode passes through the umask, so chmod). */
function sharedDir(name: string): string {
  const d = join(dir, name);
  mkdirSync(d);
  chmodSync(d, 0o1777);
  return d;
}

/** A symlink at `at` to `target` as another user (nobody) would have made it. */
function plantAsNobody(target: string, at: string): void {
  symlinkSync(target, at);
  lchownSync(at, 65534, 65534);
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
  await rebuildIfStale(['export/local', 'export/archive-writer', 'export/tar', 'fs/replace-file', 'fs/write-at', 'builder/build', 'builder/attestation-files', 'cli/commands/build', 'cli/commands/sbom', 'cli/commands/save', 'report/index']);
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

  it('follows a destination symlink the user made, but not one another user planted in a shared directory', async () => {
    const mine = join(dir, 'out-mine');
    mkdirSync(mine);
    const link = join(dir, 'out-link');
    symlinkSync(mine, link);
    await build(context('ctx-dest-link', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' }), '-o', `type=local,dest=${link}`);
    expect(readFileSync(join(mine, 'f'), 'utf8')).toBe('x');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);

    const target = victims('host-dest-link');
    const planted = join(sharedDir('shared-dest'), 'out');
    plantAsNobody(target.dir, planted);
    const r = await kiln(['build', '-q', '-o', `type=local,dest=${planted}`, context('ctx-dest-planted', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' })]);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`kiln: -o type=local: ${planted} is a symlink another user (uid 65534) made in a shared directory; kiln does not follow it (name what it points to, or write somewhere else)\n`);
    expectUntouched(target);
  });
});

describe('-o type=oci,tar=false', () => {
  it('writes into a fresh private directory, never one prepared beside the destination', async () => {
    const v = victims('host-oci-dir');
    const shared = sharedDir('shared-oci');
    const dest = join(shared, 'oci');
    // the old temporary name was `${dest}.kiln-tmp-${pid}`: prepare it for every pid the build may get
    const last = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    for (let p = last + 1; p < last + 400; p++) {
      mkdirSync(`${dest}.kiln-tmp-${p}`);
      symlinkSync(v.file, `${dest}.kiln-tmp-${p}/index.json`);
    }
    await build(context('ctx-oci-dir', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' }), '-o', `type=oci,tar=false,dest=${dest}`);

    expectUntouched(v);
    expect(lstatSync(join(dest, 'index.json')).isFile()).toBe(true);
    expect(JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8'))).toMatchObject({ schemaVersion: 2 });
    expect(lstatSync(join(dest, 'oci-layout')).isFile()).toBe(true);
    expect(statSync(dest).mode & 0o777).toBe(0o755);
    // the prepared directories were not used, and no temporary directory is left
    expect(readdirSync(`${dest}.kiln-tmp-${last + 1}`)).toEqual(['index.json']);
    expect(readdirSync(shared).filter((n) => !n.startsWith('oci.kiln-tmp-'))).toEqual(['oci']);
  });
});

describe('-o type=oci,tar=false into a path whose parents do not exist yet', () => {
  it('makes the parents, as BuildKit does', async () => {
    const dest = join(dir, 'no', 'such', 'parent', 'oci');
    await build(context('ctx-oci-parents', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' }), '-o', `type=oci,tar=false,dest=${dest}`);
    expect(JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8'))).toMatchObject({ schemaVersion: 2 });
  });
});

describe('--cache-to type=local', () => {
  it('writes no file through a symlink planted in the cache directory', async () => {
    const v = victims('host-cache');
    const dest = join(dir, 'cache');
    mkdirSync(dest);
    symlinkSync(v.file, join(dest, 'index.json.tmp'));
    symlinkSync(v.file, join(dest, 'oci-layout.tmp'));
    const r = await build(context('ctx-cache', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'cached' }), '--cache-to', `type=local,dest=${dest}`);

    expect(r.stderr).not.toContain('cache export');
    expectUntouched(v);
    expect(lstatSync(join(dest, 'index.json')).isFile()).toBe(true);
    expect(JSON.parse(readFileSync(join(dest, 'index.json'), 'utf8'))).toMatchObject({ schemaVersion: 2 });
    expect(readdirSync(dest).filter((n) => n.endsWith('.tmp') && !lstatSync(join(dest, n)).isSymbolicLink())).toEqual([]);
  });

  it('does not write into a directory another user\'s symlink in a shared directory leads to', async () => {
    const v = victims('host-cache-dest');
    const shared = sharedDir('shared-cache');
    const dest = join(shared, 'kiln-cache');
    plantAsNobody(v.dir, dest);
    const r = await kiln(['build', '--progress', 'plain', '--cache-to', `type=local,dest=${dest}`, context('ctx-cache-dest', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'dest' })]);
    expect(r.code).toBe(0);
    expect(r.stderr + r.stdout).toContain(`--cache-to type=local: ${dest} is a symlink another user (uid 65534) made in a shared directory; kiln does not follow it`);
    expectUntouched(v);
    expect(lstatSync(dest).isSymbolicLink()).toBe(true);
  });

  it('does not put blobs into a directory a symlink in the cache directory leads to', async () => {
    const v = victims('host-cache-blobs');
    const dest = join(dir, 'cache-blobs');
    mkdirSync(dest);
    symlinkSync(v.dir, join(dest, 'blobs'));
    const r = await kiln(['build', '--progress', 'plain', '--cache-to', `type=local,dest=${dest}`, context('ctx-cache-blobs', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'blobs' })]);
    // a cache that cannot be written is a warning; the build stands
    expect(r.code).toBe(0);
    expect(r.stderr + r.stdout).toContain(`WARNING: cache export to ${dest} failed: ${join(dest, 'blobs')} is not a directory (a symlink or a file); nothing is written through it`);
    expectUntouched(v);
  });
});

describe('output files', () => {
  it('refuse a symlink another user planted in a shared directory at --iidfile, --metadata-file, -o type=tar, --report and sbom -o', async () => {
    const v = victims('host-files');
    const shared = sharedDir('shared-files');
    const ctx = context('ctx-files', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' });
    await build(ctx, '-t', 'localhost/export-writes/files:1');
    const s = (n: string): string => join(shared, n);
    const runs: Array<[string, string[]]> = [
      ['iid', ['build', '-q', '--iidfile', s('iid'), ctx]],
      ['meta.json', ['build', '-q', '--metadata-file', s('meta.json'), ctx]],
      ['fs.tar', ['build', '-q', '-o', `type=tar,dest=${s('fs.tar')}`, ctx]],
      ['report.svg', ['build', '-q', '--report', s('report.svg'), ctx]],
      ['sbom.json', ['sbom', 'localhost/export-writes/files:1', '-o', s('sbom.json')]],
    ];
    for (const [n, args] of runs) {
      // the kernel's protected_symlinks rule, which kiln applies itself, refuses to follow it
      plantAsNobody(v.file, s(n));
      const r = await kiln(args);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toContain(`${s(n)} is a symlink another user (uid 65534) made in a shared directory; kiln does not follow it`);
      expect(lstatSync(s(n)).isSymbolicLink()).toBe(true);
    }
    expectUntouched(v);
  });

  it('refuse a parent directory that is another user\'s link in a shared directory (-o type=oci,tar=false and --iidfile)', async () => {
    const v = victims('host-parent');
    mkdirSync(join(v.dir, 'out'));
    writeFileSync(join(v.dir, 'out', 'data'), 'ORIGINAL');
    const shared = sharedDir('shared-parent');
    const link = join(shared, 'kiln-out');
    plantAsNobody(v.dir, link);
    const ctx = context('ctx-parent', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' });
    for (const args of [['-o', `type=oci,tar=false,dest=${join(link, 'out')}`], ['--iidfile', join(link, 'iid')]]) {
      const r = await kiln(['build', '-q', ...args, ctx]);
      expect(r.code, r.stderr).not.toBe(0);
      expect(r.stderr).toContain(`${link} is a symlink another user (uid 65534) made in a shared directory; kiln does not follow it`);
    }
    expect(readFileSync(join(v.dir, 'out', 'data'), 'utf8')).toBe('ORIGINAL');
    expect(readdirSync(v.dir).sort()).toEqual(['out', 'secret']);
    expect(readFileSync(v.file, 'utf8')).toBe('ORIGINAL');
  });

  it('refuse a pipe another user made in a shared directory, and lend no mode from their file there', async () => {
    const shared = sharedDir('shared-nodes');
    const ctx = context('ctx-nodes', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' });
    // a pipe that user reads would hand them the whole output (here the file system's tar)
    const fifo = join(shared, 'out.tar');
    execFileSync('mkfifo', ['-m', '666', fifo]);
    chownSync(fifo, 65534, 65534);
    const r = await kiln(['build', '-q', '-o', `type=tar,dest=${fifo}`, ctx]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`${fifo} is a pipe another user (uid 65534) made in a shared directory; kiln does not write to it`);
    // their file is replaced by kiln's own: root's, with kiln's mode, none of their setuid or world-write bits
    const iid = join(shared, 'iid');
    writeFileSync(iid, 'planted');
    chownSync(iid, 65534, 65534);
    chmodSync(iid, 0o6777);
    const b = await build(ctx, '--iidfile', iid);
    expect(readFileSync(iid, 'utf8')).toBe(b.stdout.trim());
    const st = statSync(iid);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o7022).toBe(0);
  });

  it('follow a symlink the user made to their own file (which keeps its mode) or to a device such as /dev/null', async () => {
    const own = join(dir, 'own-files');
    mkdirSync(own);
    writeFileSync(join(own, 'real-iid'), 'OLD', { mode: 0o600 });
    symlinkSync(join(own, 'real-iid'), join(own, 'iid'));
    symlinkSync('/dev/null', join(own, 'null'));
    const ctx = context('ctx-own-files', { Dockerfile: 'FROM scratch\nCOPY f /f\n', f: 'x' });
    const r = await build(ctx, '--iidfile', join(own, 'iid'), '--metadata-file', join(own, 'null'));
    expect(lstatSync(join(own, 'iid')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(own, 'real-iid'), 'utf8')).toBe(r.stdout.trim());
    expect(statSync(join(own, 'real-iid')).mode & 0o7777).toBe(0o600);
    expect(statSync('/dev/null').isCharacterDevice()).toBe(true);
    expect(readdirSync(own).sort()).toEqual(['iid', 'null', 'real-iid']);

    // standard output still works
    const tar = await kiln(['build', '-q', '-o', 'type=tar,dest=-', ctx]);
    expect(tar.code).toBe(0);
    expect(tar.stdout.startsWith('f\0')).toBe(true);
  });

  it('replace a symlink the image holds under an attestation file name of -o type=local', async () => {
    const v = victims('host-attest');
    const dest = join(dir, 'out-attest');
    const ctx = context('ctx-attest', { Dockerfile: 'FROM scratch\nCOPY d/ /\n', 'd/provenance.json': { link: v.file } });
    await build(ctx, '--provenance', 'mode=min', '-o', `type=local,dest=${dest}`);

    expectUntouched(v);
    expect(lstatSync(join(dest, 'provenance.json')).isFile()).toBe(true);
    expect(JSON.parse(readFileSync(join(dest, 'provenance.json'), 'utf8'))).toMatchObject({ predicateType: expect.stringContaining('slsa') as unknown });
  });
});

describe('kiln save', () => {
  it('removes its temporary file when interrupted', async () => {
    const ctx = context('ctx-save', { Dockerfile: 'FROM scratch\nCOPY big /big\n' });
    writeFileSync(join(ctx, 'big'), randomBytes(96 * 1024 * 1024));
    await build(ctx, '-t', 'localhost/export-writes/big:1');
    const out = join(dir, 'save-out');
    mkdirSync(out);
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const child = spawn(process.execPath, [KILN_BIN, '--root', root, 'save', 'localhost/export-writes/big:1', '-o', join(out, 'img.tar')], { stdio: 'ignore' });
      const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
      // signalled while the archive is being written beside its name
      let seen = false;
      for (let i = 0; i < 2000 && !seen; i++) {
        seen = readdirSync(out).some((n) => /^\.img\.tar\.[0-9a-f]+\.tmp$/.test(n));
        if (!seen) await new Promise((r) => setTimeout(r, 5));
      }
      expect(seen).toBe(true);
      child.kill(sig);
      const [code, signal] = await exited;
      expect({ code, signal }).toEqual({ code: null, signal: sig });
      expect(readdirSync(out)).toEqual([]);
    }
  });
});
