import { chownSync, lstatSync, mkdirSync, type Stats } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { KilnError } from '../errors/index.js';
import { listBeneath, removeBeneath, statBeneath } from '../fs/index.js';
import { buildSpec, etcMounts, writeBundle, writeEtcFiles, type ExtraHost, type ResourceLimits } from './bundle.js';
import { cgroupLayout, containerCgroupsPath, oomKilled, readUsage, removeContainerCgroups, removeContainerCgroupsWhenIdle, type CgroupUsage } from './cgroups.js';
import { DEFAULT_HOSTNAME, DEFAULT_PATH, systemMounts } from './docker-defaults.js';
import { mountOverlay, mountTmpfs, unmount } from './mount.js';
import { isOverlayOpaque } from '../layer/walk.js';
import { setupNetwork, type RunNetwork, type SharedNetwork } from './network.js';
import type { NetworkMode } from './network-mode.js';
import { OutputSink, type OutputListener } from './output.js';
import { applyUlimits, inheritedRlimits, type Ulimit } from './rlimits.js';
import { resolveInRoot } from './rootfs-path.js';
import { prepareMounts, secretDir, type RunMountSpec } from './run-mounts.js';
import { forceDeleteContainer, runContainer, type RuntimeOptions } from './runtime.js';
import { CONTAINER_PREFIX, makeScratch, removeScratch, sweepKilledRuns } from './scratch.js';
import { resolveUser } from './user.js';

/**
 * One process run in a fresh overlay over read-only lower dirs, through the
 * OCI runtime. Used by the RUN step (which turns the upperdir into a layer)
 * and by `kiln run` (which throws it away).
 */

export interface SandboxRequest {
  /** Store root: scratch dirs go to `<root>/tmp/`, cache mounts to `<root>/cache-mounts/`. */
  storeRoot: string;
  /** Snapshot dirs of the parent layers, topmost first; empty for `FROM scratch`. */
  lowerdirs: string[];
  args: string[];
  /** KEY=VALUE; PATH, HOSTNAME and HOME are added when missing. */
  env: string[];
  /** As written in USER: name, uid, name:group, uid:gid. Default root. */
  user?: string | undefined;
  /** Absolute; created (owned by the user) when missing. */
  workdir: string;
  hostname?: string;
  network: NetworkMode;
  /**
   * The build's shared namespace for the `default` mode (see SharedNetwork);
   * without it, or for a `--security=insecure` RUN, the RUN gets one of its own.
   */
  sharedNetwork?: SharedNetwork;
  mounts?: RunMountSpec[];
  limits?: ResourceLimits & { ulimits?: Ulimit[]; extraHosts?: ExtraHost[] };
  securityInsecure?: boolean;
  runtime?: RuntimeOptions | undefined;
  signal?: AbortSignal;
  onOutput?: OutputListener;
  /** Every byte of output is appended here. */
  logFile?: string;
}

/** What the process left behind, for turning into a layer. Valid only during the callback. */
export interface UpperDiff {
  upperdir: string;
  /** In-image paths (relative, no leading "/") created only as mount points by the runtime; not part of the RUN's result. */
  exclude: string[];
}

export interface SandboxResult<T> {
  exitCode: number;
  usage: CgroupUsage;
  /** Exit 137 and the kernel's OOM killer met the RUN's processes (see cgroups.ts `oomKilled`). */
  oomKilled: boolean;
  durationMs: number;
  /** The process alone, from runtime start to exit: setup, the callback and cleanup excluded. */
  runMs: number;
  /** The last lines of output (stdout and stderr interleaved). */
  outputTail: string[];
  /** The callback's value; undefined when the process failed (non-zero exit). */
  collected?: T;
}

const swept = new Set<string>();

/** Mount points the runtime will create in the rootfs (host side, so they land in the upperdir). */
interface CreatedMountPoint {
  /** In-root paths from the first missing component down to the mount point. */
  chain: string[];
  /** Existing directories above the chain (copied up only because the runtime created an entry in them), with their lower metadata. */
  existingParents: Array<{ path: string; mode: number; uid: number; gid: number }>;
}

function lstatOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

// The metadata work around a RUN (a few dozen lstat/mkdir calls) is
// synchronous on purpose: each async call is a thread-pool round trip, which
// under load cost more than the calls themselves.
function findCreatedMountPoints(rootfs: string, destinations: string[]): CreatedMountPoint[] {
  const out: CreatedMountPoint[] = [];
  const all = new Set(destinations.map((d) => posix.normalize(d)));
  for (const dest of all) {
    // A mount point inside another mount (/dev/shm in /dev, a masked /proc
    // path) is created in that mount, not in the rootfs.
    const parents = [...all].filter((o) => o !== dest && dest.startsWith(o === '/' ? '/' : `${o}/`));
    if (parents.length > 0) continue;
    const resolved = resolveInRoot(rootfs, dest);
    const parts = resolved.split('/').filter(Boolean);
    const chain: string[] = [];
    const existingParents: CreatedMountPoint['existingParents'] = [];
    for (let i = 1; i <= parts.length; i++) {
      const p = parts.slice(0, i).join('/');
      if (chain.length > 0) {
        chain.push(p);
        continue;
      }
      const st = lstatOrUndefined(join(rootfs, p));
      if (!st) chain.push(p);
      else if (i < parts.length) existingParents.push({ path: p, mode: st.mode, uid: st.uid, gid: st.gid });
    }
    if (chain.length > 0) out.push({ chain, existingParents });
  }
  return out;
}

/** A created mount point is always excluded; its created parents only when the RUN left nothing else in them. */
function exclusionsFor(upperdir: string, created: CreatedMountPoint[]): string[] {
  const excluded = new Set<string>();
  for (const c of created) {
    const target = c.chain[c.chain.length - 1] as string;
    excluded.add(target);
  }
  // deepest parents first so an excluded child makes its parent empty
  const parents = [...new Set(created.flatMap((c) => c.chain.slice(0, -1)))].sort((a, b) => b.length - a.length);
  for (const p of parents) {
    // beneath, not join: the RUN may have swapped a parent for a symlink to a host directory
    const names = listBeneath(upperdir, p);
    if (names === undefined) continue;
    if (names.every((n) => excluded.has(`${p}/${n}`))) excluded.add(p);
  }
  // An existing dir (/etc for /etc/hosts) was copied up just for the mount
  // point: drop it unless the RUN also changed it or put something in it.
  const existing = new Map(created.flatMap((c) => c.existingParents).map((e) => [e.path, e]));
  for (const e of [...existing.values()].sort((a, b) => b.path.length - a.path.length)) {
    const st = statBeneath(upperdir, e.path);
    // the lookup above went through real directories only, so the path below names the same one;
    // e.mode (st_mode, type bits included) is a directory's, so an equal mode is a directory too
    if (!st || st.mode !== e.mode || st.uid !== e.uid || st.gid !== e.gid || isOverlayOpaque(join(upperdir, e.path))) continue;
    const names = listBeneath(upperdir, e.path) ?? [];
    if (names.every((n) => excluded.has(`${e.path}/${n}`))) excluded.add(e.path);
  }
  return [...excluded].sort();
}

/**
 * Removes the mount points `exclude` names from the unmounted `upperdir` (before it is kept as the
 * step's snapshot). Each path is looked up beneath the upperdir one directory at a time without
 * following a symlink: the RUN's processes wrote that tree, and a parent they replaced with a
 * link to a host directory (`mv /a /b && ln -s /usr /a` around a mount at /a/x) would otherwise
 * make kiln delete the host's /usr/x. A path whose parent is no longer a directory is no longer a
 * mount point of this tree and is left as it is.
 */
export function dropExcluded(upperdir: string, exclude: string[]): void {
  for (const p of exclude) removeBeneath(upperdir, p, `the mount point /${p}`);
}

/** WORKDIR is created like BuildKit does: missing components owned by the RUN's user, 0755, part of the layer. */
function ensureWorkdir(rootfs: string, workdir: string, uid: number, gid: number): void {
  const resolved = resolveInRoot(rootfs, workdir);
  const parts = resolved.split('/').filter(Boolean);
  for (let i = 1; i <= parts.length; i++) {
    const host = join(rootfs, ...parts.slice(0, i));
    if (lstatOrUndefined(host)) continue;
    mkdirSync(host, { mode: 0o755 });
    chownSync(host, uid, gid);
  }
}

function withDefaults(env: string[], extra: Record<string, string>): string[] {
  const keys = new Set(env.map((e) => e.split('=', 1)[0]));
  const out = [...env];
  for (const [k, v] of Object.entries(extra)) if (!keys.has(k)) out.push(`${k}=${v}`);
  return out;
}

export async function runSandbox<T>(req: SandboxRequest, collect?: (diff: UpperDiff) => Promise<T>): Promise<SandboxResult<T>> {
  if (req.signal?.aborted) throw new KilnError('CANCELLED', 'RUN cancelled before it started');
  if (!req.workdir.startsWith('/')) throw new KilnError('RUN_FAILED', `working directory "${req.workdir}" is not absolute`);
  if (req.args.length === 0) throw new KilnError('RUN_FAILED', 'no command to run');
  const runtimeName = basename(req.runtime?.runtime ?? 'runc');
  if (runtimeName === 'crun' && cgroupLayout() === 'hybrid') {
    throw new KilnError('SANDBOX', 'crun cannot run on this host: it has a hybrid cgroup layout (cgroup v1 controllers plus a cgroup2 mount)', {
      hint: 'use the default runtime (runc), or boot with systemd.unified_cgroup_hierarchy=1 / unmount the cgroup2 hierarchy',
    });
  }
  if (!swept.has(req.storeRoot)) {
    swept.add(req.storeRoot);
    // what a killed process left (library callers open the store without the CLI's sweep): a killed
    // RUN always leaves a scratch dir, so with none (and no dead process's cgroup) this is one readdir
    // and the cgroup directories, not a `runc list` (~40 ms)
    await sweepKilledRuns(req.storeRoot, { cgroups: true });
  }
  const started = Date.now();
  const { name, dir } = await makeScratch(req.storeRoot);
  const id = `${CONTAINER_PREFIX}${name}`;
  const upperdir = join(dir, 'u');
  const rootfs = join(dir, 'm');
  const sink = new OutputSink(req.onOutput, req.logFile);
  let release: (() => Promise<void>) | undefined;
  let network: Promise<RunNetwork> | undefined;
  let containerStarted = false;
  let exit: { exitCode: number; aborted: boolean } | undefined;
  let runMs = 0;
  let usage: CgroupUsage = { cpuSeconds: 0 };
  let collected: T | undefined;
  let failure: unknown;
  try {
    for (const d of ['u', 'w', 'm', 'e', 'l']) mkdirSync(join(dir, d));
    // the namespace and slirp4netns come up in other processes while this one mounts and prepares
    // an insecure RUN has CAP_NET_ADMIN and could change a shared namespace for the RUNs after it
    const shared = req.network === 'default' && req.securityInsecure !== true ? req.sharedNetwork : undefined;
    network = shared ? shared.acquire() : setupNetwork(req.network, dir);
    network.catch(() => undefined);
    mountOverlay({ lowerdirs: req.lowerdirs, upperdir, workdir: join(dir, 'w'), target: rootfs, emptyLower: join(dir, 'l') });

    const user = await resolveUser(rootfs, req.user);
    ensureWorkdir(rootfs, req.workdir, user.uid, user.gid);
    const prepared = await prepareMounts(req.mounts ?? [], { storeRoot: req.storeRoot, scratch: dir, signal: req.signal });
    release = prepared.release;
    const hostname = req.hostname ?? DEFAULT_HOSTNAME;
    const net = await network;
    const etc = writeEtcFiles(join(dir, 'e'), hostname, net.resolvConf, req.limits?.extraHosts);
    const mounts = [...etcMounts(etc), ...prepared.mounts];
    const insecure = req.securityInsecure === true;
    const created = findCreatedMountPoints(rootfs, [...systemMounts({ insecure }).map((m) => m.destination), ...mounts.map((m) => m.destination)]);

    const env = withDefaults([...req.env, ...prepared.env], { PATH: DEFAULT_PATH, HOSTNAME: hostname, HOME: user.home });
    const spec = await buildSpec({
      rootfs,
      args: req.args,
      env,
      cwd: req.workdir,
      user,
      hostname,
      network: req.network,
      ...(net.namespace?.path ? { netnsPath: net.namespace.path } : {}),
      mounts,
      rlimits: applyUlimits(inheritedRlimits(), req.limits?.ulimits),
      cgroupsPath: containerCgroupsPath(id, req.limits?.cgroupParent),
      limits: req.limits,
      insecure,
    });
    // With secrets, config.json (which may hold env= secrets) stays on the tmpfs too.
    let bundle = dir;
    if (prepared.env.length > 0 || prepared.hasSecrets) {
      bundle = secretDir(dir);
      if (!prepared.hasSecrets) {
        mkdirSync(bundle, { recursive: true });
        mountTmpfs(bundle, { size: 16 * 1024 * 1024, mode: 0o700 });
      }
    }
    writeBundle(bundle, spec);

    containerStarted = true;
    const runStart = performance.now();
    exit = await runContainer({ ...req.runtime, id, bundle, sink, signal: req.signal });
    runMs = performance.now() - runStart;
    usage = readUsage(id, req.limits?.cgroupParent);
    await sink.end();
    if (exit.aborted || req.signal?.aborted) throw new KilnError('CANCELLED', 'RUN cancelled');
    if (exit.exitCode === 0 && collect) {
      // The overlay must be gone before the upperdir is read: no writer can race the diff.
      unmount(rootfs);
      collected = await collect({ upperdir, exclude: exclusionsFor(upperdir, created) });
    }
  } catch (e) {
    failure = e;
  } finally {
    await sink.end().catch(() => undefined);
    const cleanupErrors: unknown[] = [];
    const attempt = async (fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (e) {
        cleanupErrors.push(e);
      }
    };
    if (containerStarted && (exit === undefined || exit.aborted || failure !== undefined)) {
      await attempt(() => forceDeleteContainer(id, req.runtime));
    }
    if (containerStarted) {
      // after a kill the container's processes may take a moment to leave their cgroup
      await attempt(async () => (removeContainerCgroups(id, [], req.limits?.cgroupParent) ? undefined : removeContainerCgroupsWhenIdle(id, [], 3000, req.limits?.cgroupParent)));
    }
    if (release) await attempt(release);
    if (network) {
      const pending = network;
      await attempt(async () => (await pending.catch(() => undefined))?.close());
    }
    // removeScratch reads mountinfo once: it also catches mounts a failed step left half made
    await attempt(() => removeScratch(dir));
    if (failure === undefined && cleanupErrors.length > 0) failure = cleanupErrors[0];
  }
  if (failure !== undefined) throw failure;
  const result: SandboxResult<T> = {
    exitCode: exit?.exitCode ?? 1,
    usage,
    oomKilled: exit?.exitCode === 137 && oomKilled(usage, req.limits?.memory),
    durationMs: Date.now() - started,
    runMs,
    outputTail: sink.tail(),
  };
  if (collected !== undefined) result.collected = collected;
  return result;
}
