import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, chownSync, constants, cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { KILN_BIN, type KilnRun } from './kiln-cli.js';

/**
 * An unprivileged account for the rootless tests, made by the test setup
 * (which runs as root): a system user without a login, with a subordinate
 * uid/gid range of its own in /etc/subuid and /etc/subgid. Idempotent: an
 * existing user or range is kept.
 */
export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  /** First subordinate id and count (undefined: the user has none). */
  subStart?: number;
  subCount?: number;
}

export const ROOTLESS_USER = 'kiln-rootless';
/** Far from the ranges useradd hands out (100000 upwards, 65536 each), so it never overlaps another user's. */
export const ROOTLESS_SUB_START = 1_500_000;
export const ROOTLESS_SUB_COUNT = 65536;

function idOf(name: string, flag: '-u' | '-g'): number | undefined {
  try {
    return Number(execFileSync('id', [flag, name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    return undefined;
  }
}

function hasRange(file: string, name: string): boolean {
  return readFileSync(file, 'utf8').split('\n').some((l) => l.startsWith(`${name}:`));
}

export function ensureTestUser(name = ROOTLESS_USER, withRange = true): TestUser {
  if (idOf(name, '-u') === undefined) {
    try {
      execFileSync('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name], { stdio: 'pipe' });
    } catch (e) {
      // two test files may race to create it; the loser finds it there
      if (idOf(name, '-u') === undefined) throw e;
    }
  }
  if (withRange) {
    for (const [file, flag] of [['/etc/subuid', '--add-subuids'], ['/etc/subgid', '--add-subgids']] as const) {
      if (!existsSync(file) || !hasRange(file, name)) {
        execFileSync('usermod', [flag, `${ROOTLESS_SUB_START}-${ROOTLESS_SUB_START + ROOTLESS_SUB_COUNT - 1}`, name], { stdio: 'pipe' });
      }
    }
  }
  const uid = idOf(name, '-u')!;
  const gid = idOf(name, '-g')!;
  return withRange ? { name, uid, gid, subStart: ROOTLESS_SUB_START, subCount: ROOTLESS_SUB_COUNT } : { name, uid, gid };
}

/** A fresh directory owned by the user (its HOME in a test). */
export function userDir(user: TestUser, prefix = 'kiln-rootless-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  chownSync(d, user.uid, user.gid);
  return d;
}

/** Gives the user everything under `dir` (contexts written by the test as root). */
export function chownTree(dir: string, user: TestUser): void {
  chownSync(dir, user.uid, user.gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, user);
    else chownSync(p, user.uid, user.gid);
  }
}

function readableByOthers(path: string): boolean {
  // every directory above must be searchable and the file readable for "other"
  for (let p = path; p !== '/'; p = dirname(p)) {
    const st = statSync(p);
    const need = p === path ? 0o004 : 0o001;
    if ((st.mode & need) === 0) return false;
  }
  accessSync(path, constants.R_OK);
  return true;
}

let staged: string | undefined;

/**
 * bin/kiln as the user sees it. A checkout under a private home (/root) is
 * not readable by another account: then dist/, bin/ and the runtime
 * node_modules are copied once into a world-readable temp dir.
 */
export function kilnBinFor(): string {
  const repo = dirname(dirname(KILN_BIN));
  if (readableByOthers(join(repo, 'dist', 'cli', 'main.js')) && readableByOthers(join(repo, 'node_modules', 'commander', 'package.json'))) return KILN_BIN;
  if (staged) return staged;
  const dir = mkdtempSync(join(tmpdir(), 'kiln-app-'));
  for (const part of ['dist', 'bin', 'package.json', 'node_modules']) cpSync(join(repo, part), join(dir, part), { recursive: true, dereference: true });
  execFileSync('chmod', ['-R', 'a+rX', dir]);
  staged = join(dir, 'bin', 'kiln');
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return staged;
}

export interface AsUserOptions {
  home: string;
  /** Extra environment. */
  env?: Record<string, string>;
  input?: string;
}

/** setpriv drops uid, gid and supplementary groups; the environment is what a login would give (HOME, PATH, no XDG_RUNTIME_DIR). */
export function spawnKilnAs(user: TestUser, args: string[], opts: AsUserOptions): ChildProcess {
  const env = { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: opts.home, ...opts.env };
  // by absolute path: a test may hand kiln a PATH without it
  return spawn('/usr/bin/setpriv', [`--reuid=${user.uid}`, `--regid=${user.gid}`, '--clear-groups', '--', process.execPath, kilnBinFor(), ...args], {
    env,
    cwd: opts.home,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

export function kilnAs(user: TestUser, args: string[], opts: AsUserOptions): Promise<KilnRun> {
  return new Promise((resolve, reject) => {
    const child = spawnKilnAs(user, args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin!.end(opts.input ?? '');
  });
}
