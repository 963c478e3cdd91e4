import { readFileSync } from 'node:fs';

/**
 * What a kiln process running inside its rootless user namespace knows about
 * that namespace. The outer process (reexec.ts) passes it in KILN_ROOTLESS;
 * it is believed only when /proc/self/uid_map shows a user namespace that is
 * not the initial one, so the variable cannot make real root act rootless.
 */

/** One line of uid_map/gid_map: ids `inner..inner+count-1` in the namespace are `outer..` outside. */
export interface IdMapping {
  inner: number;
  outer: number;
  count: number;
}

export interface RootlessSession {
  /** The user outside: login name (when it has one) and ids. */
  user: string;
  uid: number;
  gid: number;
  uidMap: IdMapping[];
  gidMap: IdMapping[];
  /** No subordinate ids: only root (= the user) is mapped. */
  single: boolean;
  /** Private state of the OCI runtime (its --root), outside the namespace's view of /run. */
  runtimeRoot: string;
}

export const SESSION_ENV = 'KILN_ROOTLESS';

let cached: RootlessSession | null | undefined;

function inInitialUserNamespace(): boolean {
  try {
    const map = readFileSync('/proc/self/uid_map', 'utf8').trim().split(/\s+/);
    return map.join(' ') === '0 0 4294967295';
  } catch {
    return true;
  }
}

/** The rootless session this process runs in, or undefined (real root, or a user before the re-exec). */
export function rootlessSession(env: NodeJS.ProcessEnv = process.env): RootlessSession | undefined {
  if (cached !== undefined) return cached ?? undefined;
  cached = null;
  const raw = env[SESSION_ENV];
  if (raw && !inInitialUserNamespace()) {
    try {
      cached = JSON.parse(raw) as RootlessSession;
    } catch {
      cached = null;
    }
  }
  return cached ?? undefined;
}

/** The ids usable inside the namespace, as `0-65536` (mappings are contiguous from 0). */
export function mappedSpan(map: IdMapping[]): { first: number; last: number } {
  let last = -1;
  for (const m of [...map].sort((a, b) => a.inner - b.inner)) if (m.inner <= last + 1) last = Math.max(last, m.inner + m.count - 1);
  return { first: 0, last };
}

/**
 * overlayfs keeps its markers (opaque directories) in trusted.overlay.*,
 * which only root of the initial namespace may write; in a user namespace
 * kiln mounts with `userxattr` and the markers live in user.overlay.*.
 */
export function overlayXattrPrefix(): string {
  return rootlessSession() ? 'user.overlay.' : 'trusted.overlay.';
}

/**
 * The first path under /proc that something is mounted over (a container
 * runtime's masked paths: /proc/kcore, /proc/acpi…). The kernel lets a user
 * namespace mount a fresh proc (or sysfs) only when the existing one is
 * fully visible, so under a masked /proc a RUN cannot get its own.
 * binfmt_misc sits on a directory proc keeps empty for it: not a mask.
 */
export function maskedProcPath(mountinfo?: string): string | undefined {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return undefined;
    }
  }
  for (const line of text.split('\n')) {
    const mountPoint = line.split(' ')[4];
    if (mountPoint && mountPoint.startsWith('/proc/') && mountPoint !== '/proc/sys/fs/binfmt_misc') return mountPoint;
  }
  return undefined;
}

/** `KILN_NO_PROCESS_SANDBOX=1`: under a masked /proc, RUN shares kiln's pid namespace and a bind of its /proc (as BuildKit's --oci-worker-no-process-sandbox). */
export const NO_PROCESS_SANDBOX_ENV = 'KILN_NO_PROCESS_SANDBOX';

/** Root of the initial user namespace: the only case where kiln may give files arbitrary owners on the host. */
export function isHostRoot(): boolean {
  return process.getuid?.() === 0 && rootlessSession() === undefined;
}
