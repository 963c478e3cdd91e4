import { cgroupsWritable } from './cgroups.js';
import type { NetworkMode } from './network-mode.js';
import type { OciIdMapping, OciMount, OciSpec } from './oci-spec.js';
import { mappedSpan, type IdMapping, type RootlessSession } from '../rootless/session.js';

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

/** sysfs may only be mounted by the owner of the network namespace: a joined one (host, slirp4netns) gets a read-only bind of /sys. */
function sysfsBind(): OciMount {
  return { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] };
}

export function adaptSpecForUserNamespace(spec: OciSpec, session: RootlessSession, network: NetworkMode, warn: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): void {
  spec.linux.namespaces = [{ type: 'user' }, ...spec.linux.namespaces.filter((n) => n.type !== 'user')];
  spec.linux.uidMappings = identity(session.uidMap);
  spec.linux.gidMappings = identity(session.gidMap);
  const ownNetns = network === 'none';
  const gids = mappedSpan(session.gidMap).last;
  spec.mounts = spec.mounts.flatMap((m): OciMount[] => {
    if (m.type === 'sysfs' && !ownNetns) return [sysfsBind()];
    // the bind of /sys already holds the cgroup tree (read-only)
    if (m.type === 'cgroup' && !ownNetns) return [];
    // devpts's gid=5 (tty) must be a mapped id
    if (m.type === 'devpts' && gids < 5) return [{ ...m, options: (m.options ?? []).filter((o) => !o.startsWith('gid=')) }];
    return [m];
  });
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
