import { writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { KilnError } from '../errors/index.js';
import { boundingCapabilities, DEFAULT_CAPABILITIES, MASKED_PATHS, READONLY_PATHS, systemMounts } from './docker-defaults.js';
import type { OciMount, OciResources, OciRlimit, OciSpec } from './oci-spec.js';
import { defaultSeccomp } from './seccomp.js';
import type { NetworkMode } from './network-mode.js';
import type { ResolvedUser } from './user.js';
import { adaptSpecForUserNamespace } from './rootless-spec.js';
import { rootlessSession } from '../rootless/session.js';

/**
 * The OCI runtime bundle of one RUN: `config.json` describing the process,
 * namespaces, capabilities, seccomp, masked paths, mounts and cgroup limits.
 */

export type { NetworkMode } from './network-mode.js';

export interface ResourceLimits {
  /** Bytes. */
  memory?: number | undefined;
  /** Microseconds per period (with cpuPeriod, default 100000). */
  cpuQuota?: number | undefined;
  cpuPeriod?: number | undefined;
  /** Fractional CPUs; converted to quota/period like `docker --cpus`. */
  cpus?: number | undefined;
  pidsLimit?: number | undefined;
  /** Bytes of the /dev/shm tmpfs (`--shm-size`; default 64 MiB as in Docker). */
  shmSize?: number | undefined;
  /**
   * `--cgroup-parent`: the cgroup (a path from the root of every hierarchy)
   * each RUN's cgroup nests under, instead of kiln's own.
   */
  cgroupParent?: string | undefined;
}

/** One `--add-host NAME:IP` line for the RUN's /etc/hosts. */
export interface ExtraHost {
  name: string;
  ip: string;
}

export interface BundleSpecInput {
  /** Absolute host path of the mounted rootfs. */
  rootfs: string;
  args: string[];
  env: string[];
  cwd: string;
  user: ResolvedUser;
  hostname: string;
  network: NetworkMode;
  /** For the `default` mode: the namespace (set up with user-mode networking) the container joins. */
  netnsPath?: string;
  /** /etc/hosts etc. and the RUN --mount mounts, after the system mounts. */
  mounts: OciMount[];
  rlimits: OciRlimit[];
  cgroupsPath: string;
  limits?: ResourceLimits | undefined;
  /** `RUN --security=insecure`: all capabilities, no seccomp, no masked paths (like BuildKit's entitlement). */
  insecure?: boolean;
}

export async function buildSpec(input: BundleSpecInput): Promise<OciSpec> {
  const insecure = input.insecure === true;
  const caps = insecure ? boundingCapabilities() : [...DEFAULT_CAPABILITIES];
  // A non-root process loses its capabilities at exec anyway; only the
  // bounding set matters for it (setuid binaries, file capabilities).
  const active = input.user.uid === 0 ? caps : [];
  const namespaces: Array<{ type: string; path?: string }> = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }];
  // none: a new namespace with only lo (which runc brings up); default: the prepared one; never a bridge
  if (input.network === 'none') namespaces.push({ type: 'network' });
  else if (input.network === 'default') {
    if (!input.netnsPath) throw new KilnError('INTERNAL', 'the default network mode needs a prepared network namespace');
    namespaces.push({ type: 'network', path: input.netnsPath });
  }

  const resources: OciResources = { devices: [{ allow: false, access: 'rwm' }] };
  const l = input.limits ?? {};
  // no swap limit: it needs swap accounting, which many kernels boot without (runc would fail the RUN)
  if (l.memory !== undefined) resources.memory = { limit: l.memory };
  const period = l.cpuPeriod ?? (l.cpuQuota !== undefined || l.cpus !== undefined ? 100_000 : undefined);
  const quota = l.cpuQuota ?? (l.cpus !== undefined && period !== undefined ? Math.round(l.cpus * period) : undefined);
  if (quota !== undefined || period !== undefined) {
    resources.cpu = {};
    if (quota !== undefined) resources.cpu.quota = quota;
    if (period !== undefined) resources.cpu.period = period;
  }
  if (l.pidsLimit !== undefined) resources.pids = { limit: l.pidsLimit };

  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: input.user.uid, gid: input.user.gid, additionalGids: input.user.additionalGids },
      args: input.args,
      env: input.env,
      cwd: input.cwd,
      capabilities: { bounding: caps, effective: active, permitted: active, inheritable: [], ambient: [] },
      rlimits: input.rlimits,
      // Docker leaves it off so setuid programs (sudo, su, ping) keep working.
      noNewPrivileges: false,
    },
    root: { path: input.rootfs, readonly: false },
    hostname: input.hostname,
    mounts: [...systemMounts({ insecure, ...(l.shmSize !== undefined ? { shmSize: l.shmSize } : {}) }), ...input.mounts],
    linux: {
      namespaces,
      cgroupsPath: input.cgroupsPath,
      resources,
      maskedPaths: insecure ? [] : [...MASKED_PATHS],
      readonlyPaths: insecure ? [] : [...READONLY_PATHS],
    },
  };
  if (!insecure) {
    spec.linux.seccomp = defaultSeccomp(caps, release());
  }
  const session = rootlessSession();
  if (session) adaptSpecForUserNamespace(spec, session, input.network);
  return spec;
}

/** JSON with uint64 rlimits written as exact integers (a JS number would round 2^64-1 and runc would reject it). */
export function serializeSpec(spec: OciSpec): string {
  return JSON.stringify(spec, (_k, v: unknown) => (typeof v === 'bigint' ? `\u0000u64:${v.toString()}` : v)).replace(/"\\u0000u64:(\d+)"/g, '$1');
}

export function writeBundle(dir: string, spec: OciSpec): void {
  writeFileSync(join(dir, 'config.json'), serializeSpec(spec), { mode: 0o600 });
}

export interface EtcFiles {
  hosts: string;
  resolvConf: string;
  hostname: string;
}

/**
 * /etc/hosts, /etc/resolv.conf and /etc/hostname for the container, generated
 * outside the rootfs and bind-mounted read-only so they never enter a layer.
 */
export function writeEtcFiles(dir: string, hostname: string, resolvConf: string, extraHosts: ExtraHost[] = []): EtcFiles {
  const files: EtcFiles = { hosts: join(dir, 'hosts'), resolvConf: join(dir, 'resolv.conf'), hostname: join(dir, 'hostname') };
  // names and addresses were validated by parseAddHost: no whitespace or newline can add a line of its own
  const extra = extraHosts.map((h) => `${h.ip}\t${h.name}\n`).join('');
  writeFileSync(files.hosts, `127.0.0.1\tlocalhost ${hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n${extra}`);
  writeFileSync(files.hostname, `${hostname}\n`);
  writeFileSync(files.resolvConf, resolvConf);
  return files;
}

export function etcMounts(files: EtcFiles): OciMount[] {
  const ro = ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'];
  return [
    { destination: '/etc/hosts', type: 'bind', source: files.hosts, options: ro },
    { destination: '/etc/resolv.conf', type: 'bind', source: files.resolvConf, options: ro },
    { destination: '/etc/hostname', type: 'bind', source: files.hostname, options: ro },
  ];
}
