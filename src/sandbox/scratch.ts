import { mkdirSync, readFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { KilnError } from '../errors/index.js';
import { join } from 'node:path';
import { isScratchName, storeLayout } from '../store/layout.js';
import { mountsUnder, unmount } from './mount.js';
import { listKilnCgroups, removeContainerCgroupsWhenIdle } from './cgroups.js';
import { forceDeleteContainer, listContainers } from './runtime.js';

/**
 * Per-RUN scratch directories live in `<root>/tmp/` with short names that
 * encode the owning process (pid + start time, so a recycled pid is not
 * mistaken for the owner). Several kiln processes may share a store: a sweep
 * only touches what belongs to processes that are gone.
 */

export const CONTAINER_PREFIX = 'kiln-';

let selfTag: string | undefined;
let seq = 0;

function startTime(pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields start after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = rest[19];
    return ticks === undefined ? undefined : Number(ticks).toString(36);
  } catch {
    return undefined;
  }
}

function ownerTag(): string {
  selfTag ??= `${process.pid.toString(36)}.${startTime('self') ?? '0'}`;
  return selfTag;
}

/** `r<pid36>.<start36>.<seq>`: unique per process and step, short enough for overlay options and runc ids. */
export function nextScratchName(): string {
  seq += 1;
  return `r${ownerTag()}.${seq.toString(36)}`;
}

/** True when the process that created scratch entry `name` is still running. */
export function ownerAlive(name: string): boolean {
  const m = /^(?:r|kiln-r)([0-9a-z]+)\.([0-9a-z]+)\./.exec(name);
  if (!m) return true; // not ours: never touch it
  const pid = parseInt(m[1] ?? '', 36);
  return startTime(pid) === m[2];
}

export function scratchRoot(storeRoot: string): string {
  return storeLayout(storeRoot).tmp;
}

export async function makeScratch(storeRoot: string): Promise<{ name: string; dir: string }> {
  const name = nextScratchName();
  const dir = join(scratchRoot(storeRoot), name);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return { name, dir };
}

export interface SweepReport {
  containers: string[];
  unmounted: string[];
  removed: string[];
}

/**
 * Cleans up after RUNs of kiln processes that died without their `finally`
 * (SIGKILL, OOM, power loss): force-deletes their runc containers, unmounts
 * what they mounted under the store root (read from /proc/self/mountinfo), and
 * removes their scratch directories. Live processes' RUNs are left alone.
 */
export async function sweepMounts(storeRoot: string): Promise<SweepReport> {
  const report: SweepReport = { containers: [], unmounted: [], removed: [] };
  const tmp = scratchRoot(storeRoot);
  // runc's state is machine-wide: only containers whose scratch dir is in this store are this sweep's
  // (another store's leftovers are reported by its own fsck and swept by its own commands)
  const ours = new Set((await readdir(tmp).catch(() => [] as string[])).filter(isScratchName));
  for (const id of await listContainers()) {
    if (!id.startsWith(CONTAINER_PREFIX) || ownerAlive(id) || !ours.has(id.slice(CONTAINER_PREFIX.length))) continue;
    const cgroupPaths = await forceDeleteContainer(id);
    await removeContainerCgroupsWhenIdle(id, cgroupPaths);
    report.containers.push(id);
  }
  // a process killed after its container exited but before removing its cgroups
  for (const id of listKilnCgroups()) {
    if (id.startsWith(CONTAINER_PREFIX) && !ownerAlive(id)) await removeContainerCgroupsWhenIdle(id);
  }
  for (const mp of mountsUnder(tmp)) {
    const rel = mp.slice(tmp.length + 1);
    const name = rel.split('/')[0] ?? '';
    if (!name || ownerAlive(name)) continue;
    unmount(mp);
    report.unmounted.push(mp);
  }
  let names: string[] = [];
  try {
    names = await readdir(tmp);
  } catch {
    return report;
  }
  const stillMounted = new Set(mountsUnder(tmp).map((p) => p.slice(tmp.length + 1).split('/')[0]));
  for (const name of names) {
    if (!isScratchName(name) || ownerAlive(name) || stillMounted.has(name)) continue;
    await rm(join(tmp, name), { recursive: true, force: true });
    report.removed.push(name);
  }
  return report;
}

/** Scratch dirs in the store's tmp/ whose kiln process is gone (one readdir and a /proc read each). */
async function deadScratch(storeRoot: string): Promise<string[]> {
  const names = await readdir(scratchRoot(storeRoot)).catch(() => [] as string[]);
  return names.filter((n) => isScratchName(n) && !ownerAlive(n));
}

/**
 * The sweep every command runs before it opens the store: a killed build's
 * containers are stopped, its cgroups removed and its mounts unmounted before
 * its scratch dirs are deleted. A killed build always leaves a scratch dir,
 * so when tmp/ holds none of a dead process this costs one readdir (no `runc list`).
 */
export async function sweepKilledRuns(storeRoot: string, opts: { cgroups?: boolean } = {}): Promise<SweepReport | undefined> {
  // with `cgroups`, also when a dead process's container cgroup is left (its removal gave up while the
  // process lived, and its scratch dir went): a few directory reads, done before a build's first RUN
  const leftCgroup = (): boolean => opts.cgroups === true && listKilnCgroups().some((id) => id.startsWith(CONTAINER_PREFIX) && !ownerAlive(id));
  if ((await deadScratch(storeRoot)).length === 0 && !leftCgroup()) return undefined;
  return sweepMounts(storeRoot);
}

export interface LiveLeftovers {
  /** runc containers (any state) of kiln processes that are gone, whose scratch dir is in this store. */
  containers: string[];
  /** Mount points under this store's tmp/ of kiln processes that are gone. */
  mounts: string[];
}

/**
 * What killed kiln processes left alive on this store (for fsck): containers
 * and mounts that a sweep has to stop and unmount. Cheap when tmp/ holds no
 * scratch dir of a dead process.
 */
export async function liveLeftovers(storeRoot: string): Promise<LiveLeftovers> {
  const dead = new Set(await deadScratch(storeRoot));
  if (dead.size === 0) return { containers: [], mounts: [] };
  const tmp = scratchRoot(storeRoot);
  const containers = (await listContainers()).filter((id) => id.startsWith(CONTAINER_PREFIX) && dead.has(id.slice(CONTAINER_PREFIX.length)));
  const mounts = mountsUnder(tmp).filter((mp) => dead.has(mp.slice(tmp.length + 1).split('/')[0] ?? ''));
  return { containers, mounts };
}

/**
 * Removes a scratch dir of this process after unmounting everything in it;
 * keeps it (for the sweep) if something stays mounted: never delete through a mount.
 */
export async function removeScratch(dir: string): Promise<void> {
  for (const mp of mountsUnder(dir)) unmount(mp);
  if (mountsUnder(dir).length > 0) throw new KilnError('SANDBOX', `cannot unmount everything under ${dir}; left for the next sweep`);
  await rm(dir, { recursive: true, force: true });
}
