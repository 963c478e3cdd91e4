import { cgroupsWritable } from './cgroups.js';
import type { NetworkMode } from './network-mode.js';
import type { OciIdMapping, OciMount, OciSpec } from './oci-spec.js';
import { KilnError } from '../errors/index.js';
import { mappedSpan, maskedProcPath, NO_PROCESS_SANDBOX_ENV, type IdMapping, type RootlessSession } from '../rootless/session.js';

/**
 * The bundle changes for runc's rootless mode. kiln already runs as root of
 * its own user namespace; each RUN gets one more, mapping the same ids onto
 * themselves, so the RUN's root holds no capability over kiln's namespace
 * (its mounts, its processes) while files keep exactly the ids the RUN gives.
 */

let warned = false;

/** One extent per extent of kiln's own mapping: the kernel maps each extent of a child namespace through a single parent extent. */
function identity(map: IdMapping[]): OciIdMapping[] {
  return map.map((m) => ({ containerID: m.inner, hostID: m.inner, size: m.count }));
}

/** A read-only bind of kiln's /sys (as runc's own rootless spec does where it cannot mount sysfs). */
function sysfsBind(): OciMount {
  return { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
}

export interface RootlessSpecOptions {
  warn?: (line: string) => void;
  /** For tests: /proc/self/mountinfo and the environment. */
  mountinfo?: string;
  env?: NodeJS.ProcessEnv;
}

export function adaptSpecForUserNamespace(spec: OciSpec, session: RootlessSession, network: NetworkMode, opts: RootlessSpecOptions = {}): void {
  const warn = opts.warn ?? ((l: string): void => void process.stderr.write(`${l}\n`));
  spec.linux.namespaces = [{ type: 'user' }, ...spec.linux.namespaces.filter((n) => n.type !== 'user')];
  spec.linux.uidMappings = identity(session.uidMap);
  spec.linux.gidMappings = identity(session.gidMap);
  const masked = maskedProcPath(opts.mountinfo);
  if (masked) {
    if ((opts.env ?? process.env)[NO_PROCESS_SANDBOX_ENV] !== '1') {
      throw new KilnError('ROOTLESS', `rootless: /proc is masked here (${masked} is mounted over), so a RUN cannot mount its own /proc`, {
        hint: `run kiln's container with an unmasked /proc (podman --security-opt unmask=/proc/*, Kubernetes procMount: Unmasked), or set ${NO_PROCESS_SANDBOX_ENV}=1 to let RUN share kiln's process namespace`,
      });
    }
    // no process sandbox: kiln's pid namespace and a bind of its /proc; sysfs is just as "too revealing" there
    spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'pid');
    spec.mounts = spec.mounts.map((m) => (m.type === 'proc' ? { destination: '/proc', type: 'bind', source: '/proc', options: ['rbind', 'nosuid', 'nodev', 'noexec'] } : m));
  }
  const gids = mappedSpan(session.gidMap).last;
  spec.mounts = spec.mounts.flatMap((m): OciMount[] => {
    // sysfs may be mounted only by the owner of the network namespace, and (like proc) only
    // where /sys is fully visible, which a container runtime's masks prevent: always a bind
    if (m.type === 'sysfs') return [sysfsBind()];
    // the bind of /sys already holds the cgroup tree (read-only)
    if (m.type === 'cgroup') return [];
    // devpts's gid=5 (tty) must be a mapped id
    if (m.type === 'devpts' && gids < 5) return [{ ...m, options: (m.options ?? []).filter((o) => !o.startsWith('gid=')) }];
    return [m];
  });
  if (spec.linux.cgroupsPath?.startsWith('/')) {
    // an absolute path starts at the hierarchy's root, outside the subtree delegated to the user
    throw new KilnError('UNSUPPORTED', '--cgroup-parent needs root: a rootless build may create cgroups only under its own delegated cgroup');
  }
  if (!cgroupsWritable()) {
    if (!warned) {
      warned = true;
      warn(`kiln: warning: rootless: cgroups are not delegated to ${session.user}; RUN limits and CPU/memory accounting are off (a systemd user session with cgroup v2 delegation enables them)`);
    }
    delete spec.linux.resources;
    delete spec.linux.cgroupsPath;
  } else if (spec.linux.resources) {
    // device rules need BPF in the initial namespace; the runtime's own device list still applies
    spec.linux.resources.devices = [];
  }
}
