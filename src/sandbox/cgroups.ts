import { accessSync, constants, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { KilnError } from '../errors/index.js';

/**
 * Where the OCI runtime puts a RUN's cgroup and how to read its accounting.
 *
 * The container's cgroupsPath is relative (`kiln/<id>/c`), so it nests under
 * kiln's own cgroup in every hierarchy: limits imposed on kiln also bind its
 * RUNs. `runc run` removes the leaf `c` when the container exits; the parent
 * `kiln/<id>` keeps the hierarchical totals (cpuacct.usage,
 * memory.max_usage_in_bytes on v1; cpu.stat, memory.peak on v2) so they can be
 * read after exit, then kiln removes it.
 */

interface Hierarchy {
  /** Mount point of the hierarchy, e.g. /sys/fs/cgroup/memory or /sys/fs/cgroup/unified. */
  mount: string;
  /** kiln's own cgroup inside it, from /proc/self/cgroup. */
  own: string;
  controllers: string[];
  v2: boolean;
}

let cached: Hierarchy[] | undefined;

function hierarchies(): Hierarchy[] {
  if (cached) return cached;
  const own = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    if (!line) continue;
    const [, ctrls = '', path = '/'] = line.split(':');
    own.set(ctrls, path);
  }
  const out: Hierarchy[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep < 0) continue;
    const type = f[sep + 1];
    const root = f[3] ?? '/';
    const mountPoint = f[4] ?? '';
    if (type === 'cgroup2') {
      const p = own.get('');
      if (p !== undefined) out.push({ mount: mountPoint, own: relTo(root, p), controllers: [], v2: true });
    } else if (type === 'cgroup') {
      const superOpts = (f[sep + 3] ?? '').split(',');
      const ctrls = superOpts.filter((o) => !['rw', 'ro', 'relatime', 'noatime', 'nosuid', 'nodev', 'noexec'].includes(o) && !o.startsWith('release_agent') && o !== 'clone_children');
      const key = [...own.keys()].find((k) => k.split(',').some((c) => ctrls.includes(c)));
      if (key !== undefined) out.push({ mount: mountPoint, own: relTo(root, own.get(key) ?? '/'), controllers: ctrls, v2: false });
    }
  }
  cached = out;
  return out;
}

/** A cgroup mount may show only a subtree (root field of mountinfo); kiln's path is relative to it. */
function relTo(root: string, path: string): string {
  if (root === '/' || !path.startsWith(root)) return path;
  return path.slice(root.length) || '/';
}

/**
 * Whether this process may create cgroups under its own (a systemd user
 * slice with Delegate=yes, cgroup v2 only): rootless RUNs get limits and
 * accounting only then. Root in the initial namespace always may.
 */
export function cgroupsWritable(): boolean {
  const hs = hierarchies();
  if (hs.length === 0 || hs.some((h) => !h.v2)) return false;
  try {
    for (const h of hs) accessSync(join(h.mount, h.own), constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * `--cgroup-parent`: a cgroup path from the root of each hierarchy (`/ci/builds`,
 * `builds.slice`), made of plain names only, so it can never climb out of the
 * cgroup tree. Returns it with one leading slash.
 */
export function checkCgroupParent(parent: string): string {
  const parts = parent.split('/').filter((p) => p !== '');
  if (parts.length === 0 || parts.some((p) => p === '.' || p === '..' || !/^[A-Za-z0-9_.@:-]+$/.test(p))) {
    throw new KilnError('USAGE', `--cgroup-parent "${parent}": want a cgroup path of plain names (letters, digits, _ . @ : -), e.g. /ci/builds or builds.slice`);
  }
  return `/${parts.join('/')}`;
}

/**
 * Relative (`kiln/<id>/c`, under kiln's own cgroup) by default; with a cgroup
 * parent, absolute (`/<parent>/kiln/<id>/c`), which the runtime places from
 * the root of every hierarchy as BuildKit's runc worker does.
 */
export function containerCgroupsPath(id: string, parent?: string): string {
  return parent ? `${checkCgroupParent(parent)}/kiln/${id}/c` : `kiln/${id}/c`;
}

/**
 * Refuses a cgroup parent this process cannot create cgroups in: every
 * hierarchy's root must be writable (root on the host, or a container with a
 * writable cgroup tree). Runs before the build, so the refusal is one line.
 */
export function assertCgroupParentUsable(parent: string): void {
  checkCgroupParent(parent);
  const hs = hierarchies();
  if (hs.length === 0) throw new KilnError('UNSUPPORTED', `--cgroup-parent ${parent}: this host has no cgroup hierarchy mounted`);
  for (const h of hs) {
    try {
      accessSync(h.mount, constants.W_OK);
    } catch {
      throw new KilnError('UNSUPPORTED', `--cgroup-parent ${parent}: cgroups cannot be created at the root of ${h.mount} (not writable by this process); start kiln in the cgroup you want instead (systemd-run --slice=…)`);
    }
  }
}

/** The directory `kiln/<id>` lives in, in hierarchy `h`. */
function baseDir(h: Hierarchy, parent: string | undefined): string {
  return parent ? join(h.mount, checkCgroupParent(parent)) : join(h.mount, h.own);
}

function parentDirs(id: string, parent?: string): string[] {
  return hierarchies().map((h) => join(baseDir(h, parent), 'kiln', id));
}

export interface CgroupUsage {
  cpuSeconds: number;
  peakMemoryBytes?: number;
  /** Processes the kernel's OOM killer killed in the RUN (cgroup v2 memory.events, which counts descendants; unknown on v1). */
  oomKills?: number;
}

/** The `key N` line of a flat-keyed cgroup file. */
function readKeyed(path: string, key: string): number | undefined {
  try {
    const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(readFileSync(path, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function readNumber(path: string): number | undefined {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

export function readUsage(id: string, parent?: string): CgroupUsage {
  let cpuSeconds = 0;
  let peak: number | undefined;
  const hs = hierarchies();
  const v1Cpu = hs.find((h) => !h.v2 && h.controllers.includes('cpuacct'));
  const v1Mem = hs.find((h) => !h.v2 && h.controllers.includes('memory'));
  const v2 = hs.find((h) => h.v2);
  if (v1Cpu) {
    const ns = readNumber(join(baseDir(v1Cpu, parent), 'kiln', id, 'cpuacct.usage'));
    if (ns !== undefined) cpuSeconds = ns / 1e9;
  } else if (v2) {
    try {
      const stat = readFileSync(join(baseDir(v2, parent), 'kiln', id, 'cpu.stat'), 'utf8');
      const m = /usage_usec (\d+)/.exec(stat);
      if (m) cpuSeconds = Number(m[1]) / 1e6;
    } catch {
      // no cpu controller delegated: usage stays 0
    }
  }
  let oomKills: number | undefined;
  if (v1Mem) {
    peak = readNumber(join(baseDir(v1Mem, parent), 'kiln', id, 'memory.max_usage_in_bytes'));
  } else if (v2) {
    peak = readNumber(join(baseDir(v2, parent), 'kiln', id, 'memory.peak'));
    oomKills = readKeyed(join(baseDir(v2, parent), 'kiln', id, 'memory.events'), 'oom_kill');
  }
  const usage: CgroupUsage = { cpuSeconds };
  if (peak !== undefined) usage.peakMemoryBytes = peak;
  if (oomKills !== undefined) usage.oomKills = oomKills;
  return usage;
}

/** The kernel charges memory in batches of up to 64 pages: a cgroup at its limit may stay this far below it. */
const CHARGE_SLACK = 1024 * 1024;

/**
 * Whether a RUN that died of SIGKILL met the OOM killer. cgroup v2 counts
 * kills in every ancestor (`kiln/<id>` outlives the runtime's leaf). v1
 * counts them only in the leaf, which `runc run` removes on exit: there the
 * hierarchical peak reaching the limit stands in for the count.
 */
export function oomKilled(usage: CgroupUsage, memoryLimit: number | undefined): boolean {
  if (usage.oomKills !== undefined) return usage.oomKills > 0;
  return memoryLimit !== undefined && usage.peakMemoryBytes !== undefined && usage.peakMemoryBytes >= memoryLimit - CHARGE_SLACK;
}

/**
 * Removes `kiln/<id>` (and a leftover leaf) in every hierarchy. `statePaths`
 * are the runtime's recorded cgroup paths of a container from a dead kiln
 * process, whose own cgroup may differ from this one's. Returns true when
 * everything is gone; a leaf whose killed processes have not exited yet is
 * busy (EBUSY), which `removeContainerCgroupsWhenIdle` waits out.
 */
export function removeContainerCgroups(id: string, statePaths: string[] = [], parent?: string): boolean {
  const dirs = new Set<string>();
  for (const p of parentDirs(id, parent)) dirs.add(p);
  for (const p of statePaths) if (p.endsWith(`/kiln/${id}/c`)) dirs.add(dirname(p));
  let clean = true;
  for (const d of dirs) {
    for (const p of [join(d, 'c'), d]) {
      try {
        rmdirSync(p);
      } catch (e) {
        // ENOENT: already gone (runc removes the leaf) or never made in this hierarchy
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') clean = false;
      }
    }
  }
  return clean;
}

export async function removeContainerCgroupsWhenIdle(id: string, statePaths: string[] = [], timeoutMs = 3000, parent?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!removeContainerCgroups(id, statePaths, parent) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
}

/**
 * `hybrid`: v1 controllers plus a cgroup2 hierarchy (often at
 * /sys/fs/cgroup/unified). runc handles it; crun sees the cgroup2 mount,
 * assumes a pure v2 host and fails to set limits.
 */
export function cgroupLayout(): 'v1' | 'v2' | 'hybrid' {
  const hs = hierarchies();
  const v1 = hs.some((h) => !h.v2);
  const v2 = hs.some((h) => h.v2);
  return v1 && v2 ? 'hybrid' : v2 ? 'v2' : 'v1';
}

/** Container ids with a `kiln/<id>` cgroup under this process's cgroups (for the sweep of dead processes' leftovers). */
export function listKilnCgroups(): string[] {
  const ids = new Set<string>();
  for (const h of hierarchies()) {
    try {
      for (const e of readdirSync(join(h.mount, h.own, 'kiln'), { withFileTypes: true })) if (e.isDirectory()) ids.add(e.name);
    } catch {
      // no kiln cgroups in this hierarchy
    }
  }
  return [...ids];
}
