import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import type { NetworkMode } from './network-mode.js';

/**
 * The network namespace of one RUN in the `default` mode: a fresh namespace
 * bound to a file in the RUN's scratch dir (so the runtime joins it by path
 * and the scratch cleanup, or the sweep after a crash, unmounts it), with
 * slirp4netns giving it a tap0 interface and outbound access through
 * ordinary sockets of this process's namespace. No bridge, no veth, no
 * privilege beyond owning the namespace: the same works inside a user
 * namespace, which is how rootless BuildKit and Podman do it.
 *
 * slirp4netns runs with `--disable-host-loopback` (10.0.2.2 does not lead
 * to the host's 127.0.0.1), `--enable-sandbox` (its own mount namespace,
 * capabilities dropped) and `--enable-seccomp`: it parses every packet the
 * RUN sends. Its lifetime is tied to a socket kiln holds (`--exit-fd`): when
 * kiln exits, however it exits, slirp4netns exits too.
 */

/** Inside the namespace: slirp4netns's fixed addresses for its default 10.0.2.0/24. */
export const SLIRP_DNS = '10.0.2.3';
export const SLIRP_GATEWAY = '10.0.2.2';
export const SLIRP_GUEST = '10.0.2.100';
/** The interface slirp4netns creates in the namespace. */
export const SLIRP_TAP = 'tap0';
/** Large frames: fewer packets through user space (the MTU rootlesskit and Podman use). */
const SLIRP_MTU = 65520;
const STARTUP_TIMEOUT_MS = 10_000;

export interface RunNetwork {
  /** The namespace for the runtime: none for `host`, a new one (`path` undefined) for `none`, a path to join for `default`. */
  namespace?: { type: 'network'; path?: string };
  /** The RUN's /etc/resolv.conf. */
  resolvConf: string;
  /** Stops the user-mode network; the namespace mount goes with the scratch dir. */
  close(): Promise<void>;
}

const nothing = async (): Promise<void> => undefined;

/**
 * The nameservers a RUN uses: the host's for `host`; slirp4netns's forwarder
 * for `default` (the host's own resolver may be a loopback address the
 * namespace cannot reach); search and options lines are kept.
 */
export function resolvConfFor(mode: NetworkMode, hostResolvConf: string): string {
  if (mode !== 'default') return hostResolvConf;
  const kept = hostResolvConf.split('\n').filter((l) => /^\s*(search|domain|options)\s/.test(l));
  return [`nameserver ${SLIRP_DNS}`, ...kept, ''].join('\n');
}

function hostResolvConf(): string {
  try {
    return readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}

function missing(bin: string, pkg: string, e: Error): KilnError {
  return new KilnError('SANDBOX', `cannot start ${bin} for the RUN's network: ${e.message}`, {
    hint: `install ${bin} (Debian package "${pkg}"), or build with --network none`,
    cause: e,
  });
}

function exitOf(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode ?? 1);
    else child.once('close', (code) => resolve(code ?? 1));
  });
}

/** A persistent network namespace bound onto `nsPath` (util-linux unshare makes and binds it in one process). */
async function makeNamespace(nsPath: string): Promise<void> {
  writeFileSync(nsPath, '', { mode: 0o600 });
  const child = spawn('unshare', [`--net=${nsPath}`, 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number>((resolve, reject) => {
    child.once('error', (e) => reject(missing('unshare', 'util-linux', e)));
    child.once('close', (c) => resolve(c ?? 1));
  });
  if (code !== 0) throw new KilnError('SANDBOX', `cannot create a network namespace for the RUN: ${stderr.trim() || `unshare exited with ${code}`}`);
}

async function startSlirp(nsPath: string): Promise<ChildProcess> {
  const args = [
    '--netns-type=path', '--configure', `--mtu=${SLIRP_MTU}`, '--disable-host-loopback', '--enable-sandbox', '--enable-seccomp',
    '--ready-fd=3', '--exit-fd=4', nsPath, SLIRP_TAP,
  ];
  // fd 3: slirp4netns writes "1" once tap0 is up; fd 4: it exits when kiln's end closes
  const child = spawn('slirp4netns', args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const ready = child.stdio[3] as Readable;
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new KilnError('SANDBOX', `slirp4netns did not bring up the RUN's network within ${STARTUP_TIMEOUT_MS / 1000} s`)), STARTUP_TIMEOUT_MS);
      const done = (e?: Error): void => {
        clearTimeout(timer);
        if (e) reject(e);
        else resolve();
      };
      ready.once('data', () => done());
      child.once('error', (e) => done(missing('slirp4netns', 'slirp4netns', e)));
      child.once('close', (code) => {
        const why = stderr.split('\n').filter((l) => l.trim() && !/^WARNING: Support for seccomp is experimental/.test(l)).slice(-2).join('; ');
        done(new KilnError('SANDBOX', `slirp4netns exited (${code ?? 'signal'}) before the RUN's network was up${why ? `: ${why}` : ''}`));
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    await exitOf(child);
    throw e;
  }
  ready.destroy();
  child.removeAllListeners('close');
  return child;
}

async function stopSlirp(child: ChildProcess): Promise<void> {
  const exited = exitOf(child);
  // closing the exit fd is the clean stop; SIGKILL if it does not go
  (child.stdio[4] as Writable | null)?.destroy();
  const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
  await exited;
  clearTimeout(timer);
}

/**
 * Sets up the network of a RUN whose scratch dir is `scratch`. The caller
 * must call `close()` (before removing the scratch dir) on success.
 */
export async function setupNetwork(mode: NetworkMode, scratch: string): Promise<RunNetwork> {
  const resolvConf = resolvConfFor(mode, hostResolvConf());
  if (mode === 'host') return { resolvConf, close: nothing };
  // runc brings up lo in a namespace it creates
  if (mode === 'none') return { namespace: { type: 'network' }, resolvConf, close: nothing };
  const nsPath = join(scratch, 'netns');
  await makeNamespace(nsPath);
  const slirp = await startSlirp(nsPath);
  return { namespace: { type: 'network', path: nsPath }, resolvConf, close: () => stopSlirp(slirp) };
}
