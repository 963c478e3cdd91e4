import { execFile, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';

const REPO = resolve(import.meta.dirname, '..', '..');

/** The entry point a user runs; it loads dist/bundle/ (or dist/ when the bundle is stale), so these tests exercise the compiled tree. */
export const KILN_BIN = join(REPO, 'bin', 'kiln');

export interface KilnRun {
  /** The exit code; -1 when the process ended on a signal. */
  code: number;
  stdout: string;
  stderr: string;
}

export interface KilnRunOptions {
  /** Added to this process's environment. */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. */
  input?: string | Buffer;
  /** A script to run instead of bin/kiln (a test-only driver over some commands). */
  entry?: string;
  /** The umask kiln starts with (set by a shell before it execs node; Node's process.umask is deprecated for this). */
  umask?: string;
}

/** Runs the CLI to completion and collects what it printed and how it exited. */
export function runKiln(args: string[], opts: KilnRunOptions = {}): Promise<KilnRun> {
  return new Promise((resolve, reject) => {
    const argv = [process.execPath, opts.entry ?? KILN_BIN, ...args];
    const [cmd, ...rest] = opts.umask === undefined ? argv : ['sh', '-c', `umask ${opts.umask} && exec "$0" "$@"`, ...argv];
    const child = spawn(cmd!, rest, { env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Rebuilds dist/ when any of `sources` (paths under src/ without `.ts`) is
 * newer than its output, so a test run after an edit does not exercise stale
 * JavaScript through bin/kiln.
 */
export async function rebuildIfStale(sources: string[]): Promise<void> {
  const stale = sources.some((s) => {
    const out = join(REPO, 'dist', `${s}.js`);
    return !existsSync(out) || statSync(out).mtimeMs < statSync(join(REPO, 'src', `${s}.ts`)).mtimeMs;
  });
  if (stale) {
    // type errors elsewhere in the tree do not stop tsc from emitting
    await promisify(execFile)(join(REPO, 'node_modules', '.bin', 'tsc'), ['-p', REPO]).catch(() => undefined);
    // bin/kiln would fall back to dist/ with the bundle now older; bundle again so the run stays on it
    await promisify(execFile)(process.execPath, [join(REPO, 'scripts', 'bundle.mjs')]).catch(() => undefined);
  }
}
