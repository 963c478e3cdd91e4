import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { KilnError } from '../errors/index.js';
import { rootlessSession } from '../rootless/session.js';
import type { OutputSink } from './output.js';

/**
 * The OCI runtime as a child process. `runc run` stays in the foreground and
 * passes its stdout/stderr pipes to the container, so output streams without
 * a terminal or a shim. It is spawned in its own session so a terminal's
 * SIGINT reaches kiln only; kiln then kills the container explicitly.
 */

export interface RuntimeOptions {
  /** Binary name or path: `runc` (default) or `crun`. */
  runtime?: string;
  /** The runtime's state directory (its --root); default is the runtime's own (/run/runc for root). */
  stateRoot?: string;
}

/** The state root in use: the caller's, else the rootless session's private one, else the runtime's default. */
function stateRootOf(opts: RuntimeOptions): string | undefined {
  return opts.stateRoot ?? rootlessSession()?.runtimeRoot;
}

function globalArgs(opts: RuntimeOptions): string[] {
  const root = stateRootOf(opts);
  // rootless: the runtime is root only in kiln's user namespace (/run/runc is not its own, cgroups may not be delegated)
  return [...(root ? ['--root', root] : []), ...(rootlessSession() ? ['--rootless', 'true'] : [])];
}

interface Captured {
  code: number;
  stdout: string;
  stderr: string;
}

function capture(bin: string, args: string[]): Promise<Captured> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export interface RunContainerOptions extends RuntimeOptions {
  id: string;
  bundle: string;
  sink: OutputSink;
  signal?: AbortSignal | undefined;
}

export interface ContainerExit {
  exitCode: number;
  /** True when the abort signal fired and the container was killed. */
  aborted: boolean;
}

/**
 * Runs the bundle to completion. On abort the container is SIGKILLed and the
 * promise resolves with `aborted: true` once the runtime has exited; the
 * caller still owns `deleteContainer` in its `finally`.
 */
export function runContainer(opts: RunContainerOptions): Promise<ContainerExit> {
  const bin = opts.runtime ?? 'runc';
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) {
      resolve({ exitCode: 137, aborted: true });
      return;
    }
    const child = spawn(bin, [...globalArgs(opts), 'run', '--bundle', opts.bundle, opts.id], {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let aborted = false;
    let exited = false;
    const onAbort = (): void => {
      aborted = true;
      // `runc run` may still be creating the container, when `runc kill`
      // finds nothing to kill: repeat until it exits; as a last resort kill
      // runc itself (the caller's forceDeleteContainer removes what is left).
      void (async () => {
        for (let i = 0; i < 50 && !exited; i++) {
          await killContainer(opts.id, opts).catch(() => undefined);
          if (!exited) await new Promise((r) => setTimeout(r, 100));
        }
        if (!exited) child.kill('SIGKILL');
      })();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (d: Buffer) => opts.sink.write('stdout', d));
    child.stderr.on('data', (d: Buffer) => opts.sink.write('stderr', d));
    child.on('error', (e) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new KilnError('SANDBOX', `cannot start the OCI runtime "${bin}": ${e.message}`, { hint: 'install runc (Debian package "runc")', cause: e }));
    });
    child.on('exit', () => (exited = true));
    child.on('close', (code, sig) => {
      opts.signal?.removeEventListener('abort', onAbort);
      resolve({ exitCode: code ?? (sig ? 128 + signalNumber(sig) : 1), aborted });
    });
  });
}

function signalNumber(sig: NodeJS.Signals): number {
  return ({ SIGKILL: 9, SIGTERM: 15, SIGINT: 2, SIGHUP: 1 } as Record<string, number>)[sig] ?? 0;
}

export async function killContainer(id: string, opts: RuntimeOptions = {}): Promise<void> {
  await capture(opts.runtime ?? 'runc', [...globalArgs(opts), 'kill', '--all', id, 'KILL']);
}

/**
 * `delete --force` kills whatever is left and removes the runtime's state
 * (and the container cgroup). Returns the cgroup paths the runtime recorded,
 * so a sweep can remove kiln's parent cgroups of another process.
 */
export async function forceDeleteContainer(id: string, opts: RuntimeOptions = {}): Promise<string[]> {
  const paths: string[] = [];
  try {
    const state = JSON.parse(await readFile(`${stateRootOf(opts) ?? '/run/runc'}/${id}/state.json`, 'utf8')) as { cgroup_paths?: Record<string, string> };
    paths.push(...Object.values(state.cgroup_paths ?? {}));
  } catch {
    // no state: nothing was created, or another runtime layout
  }
  await capture(opts.runtime ?? 'runc', [...globalArgs(opts), 'delete', '--force', id]);
  return paths;
}

export async function listContainers(opts: RuntimeOptions = {}): Promise<string[]> {
  try {
    const r = await capture(opts.runtime ?? 'runc', [...globalArgs(opts), 'list', '-q']);
    return r.code === 0 ? r.stdout.split('\n').map((s) => s.trim()).filter(Boolean) : [];
  } catch {
    return [];
  }
}
