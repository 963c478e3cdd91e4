import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { unmount } from './mount.js';
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

/**
 * One network namespace and one slirp4netns shared by the `default`-mode RUNs
 * of a build, instead of a namespace and a slirp4netns per RUN (two process
 * starts, ~25-40 ms of CPU each RUN). The RUNs of one build share it as they
 * share BuildKit's bridge: they can reach each other's listening sockets while
 * both run, and nothing else changes: the host's loopback stays unreachable
 * (same slirp4netns flags), and a RUN cannot leave state behind in it, since
 * without CAP_NET_ADMIN it can change no address, route or filter, and its
 * sockets close with its processes. A RUN with `--security=insecure` has
 * CAP_NET_ADMIN, so it never gets the shared namespace (see runSandbox).
 *
 * Made on first use and stopped by `close()`, which the build calls on every
 * way out (success, failure, SIGINT/SIGTERM/SIGHUP through its abort). If the
 * process dies without it, slirp4netns exits with it (`--exit-fd`) and the
 * namespace mount, in a scratch dir named for this process, goes in the next
 * command's sweep.
 */
export class SharedNetwork {
  private started: Promise<ChildProcess> | undefined;
  private closed = false;

  /** `nsPath`: the file the namespace is bound to, in a scratch dir of this process. */
  constructor(readonly nsPath: string) {}

  /** The shared namespace for one RUN; the RunNetwork's `close()` leaves it up for the next RUN. */
  async acquire(): Promise<RunNetwork> {
    if (this.closed) throw new KilnError('INTERNAL', 'the build network was used after the build ended');
    this.started ??= (async () => {
      await makeNamespace(this.nsPath);
      return startSlirp(this.nsPath);
    })();
    // a failed start is reported by this RUN; the next one tries again
    const slirp = await this.started.catch((e: unknown) => {
      this.started = undefined;
      throw e;
    });
    if (slirp.exitCode !== null || slirp.signalCode !== null) {
      throw new KilnError('SANDBOX', `slirp4netns, the build's RUN network, exited during the build (${slirp.exitCode ?? slirp.signalCode})`);
    }
    return { namespace: { type: 'network', path: this.nsPath }, resolvConf: resolvConfFor('default', hostResolvConf()), close: nothing };
  }

  /** Stops slirp4netns and unmounts the namespace; idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.started;
    this.started = undefined;
    if (!pending) return;
    const slirp = await pending.catch(() => undefined);
    if (slirp) await stopSlirp(slirp);
    try {
      unmount(this.nsPath);
    } catch {
      // not mounted (the start failed before the bind), or busy: the scratch sweep unmounts it
    }
  }
}
