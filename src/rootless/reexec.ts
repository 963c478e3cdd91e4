import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { SESSION_ENV, rootlessSession, type IdMapping, type RootlessSession } from './session.js';
import { readSubIds, type IdRange } from './subids.js';

/**
 * Rootless mode: a non-root `kiln` runs itself again inside a new user
 * namespace (with its own mount namespace) where it is root. Root in the
 * namespace is the user; ids 1… are the user's subordinate range from
 * /etc/subuid and /etc/subgid, mapped by the setuid newuidmap/newgidmap
 * (Debian "uidmap"), the only privileged step and not kiln's own code.
 *
 * Node cannot unshare(CLONE_NEWUSER) itself (the kernel refuses it to a
 * multi-threaded process), so util-linux `unshare` makes the namespaces and
 * execs a shell that waits on a socket: it reports "r" once it runs inside
 * the new namespace, kiln writes the mappings for its pid, then sends "go"
 * and the shell execs node. The exec must come after the mapping: only a
 * process that is uid 0 in the namespace when it execs keeps its
 * capabilities there.
 */

const USAGE_HINT = 'usermod --add-subuids 100000-165535 --add-subgids 100000-165535';

/** Whether this invocation must move into a user namespace first. */
export function wantsUserNamespace(argv: string[], uid = process.getuid?.() ?? 0): boolean {
  if (uid === 0 || rootlessSession() !== undefined) return false;
  if (argv.length === 0 || argv[0] === 'help') return false;
  return !argv.some((a) => a === '--help' || a === '-h' || a === '--version');
}

function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The kernel switches that forbid unprivileged user namespaces, named as their sysctls. */
export function userNamespaceBlocker(read: (p: string) => string | undefined = readSysctl): string | undefined {
  if (read('/proc/sys/user/max_user_namespaces') === '0') return 'user.max_user_namespaces=0';
  if (read('/proc/sys/kernel/unprivileged_userns_clone') === '0') return 'kernel.unprivileged_userns_clone=0';
  if (read('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1') return 'kernel.apparmor_restrict_unprivileged_userns=1';
  return undefined;
}

function loginName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

/** Where the OCI runtime keeps its state: $XDG_RUNTIME_DIR when it is the user's, else the user's cache dir. */
function runtimeRoot(env: NodeJS.ProcessEnv, uid: number): string {
  const xdg = env['XDG_RUNTIME_DIR'];
  if (xdg && isAbsolute(xdg)) {
    try {
      const st = statSync(xdg);
      if (st.isDirectory() && st.uid === uid) return join(xdg, 'kiln', 'runc');
    } catch {
      // not there: fall back to the cache dir
    }
  }
  const cache = env['XDG_CACHE_HOME'] && isAbsolute(env['XDG_CACHE_HOME']) ? env['XDG_CACHE_HOME'] : join(env['HOME'] ?? userInfo().homedir, '.cache');
  return join(cache, 'kiln', 'runc');
}

export interface MappingPlan {
  session: RootlessSession;
  /** For the notice and errors: the ranges found (undefined in single-id mode). */
  subuid?: IdRange;
  subgid?: IdRange;
}

export function planMapping(env: NodeJS.ProcessEnv = process.env, files = { subuid: '/etc/subuid', subgid: '/etc/subgid' }): MappingPlan {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const user = loginName();
  const subuid = readSubIds(files.subuid, user, uid);
  const subgid = readSubIds(files.subgid, user, uid);
  const single = subuid === undefined || subgid === undefined;
  const map = (own: number, r: IdRange | undefined): IdMapping[] =>
    single || !r ? [{ inner: 0, outer: own, count: 1 }] : [{ inner: 0, outer: own, count: 1 }, { inner: 1, outer: r.start, count: r.count }];
  const session: RootlessSession = {
    user: user ?? String(uid),
    uid,
    gid,
    uidMap: map(uid, subuid),
    gidMap: map(gid, subgid),
    single,
    runtimeRoot: runtimeRoot(env, uid),
  };
  return single ? { session } : { session, subuid, subgid };
}

/** The line printed once per invocation when only the user's own id can be mapped. */
export function singleIdNotice(plan: MappingPlan): string {
  const s = plan.session;
  const missing = plan.subuid === undefined ? '/etc/subuid' : '/etc/subgid';
  return `rootless: no subordinate ids for ${s.user} in ${missing}; only uid ${s.uid} is mapped (as root), so images with files of other owners cannot be built (${USAGE_HINT} ${s.user})`;
}

function rootlessError(message: string, hint?: string, cause?: unknown): KilnError {
  return new KilnError('ROOTLESS', `rootless: ${message}`, { ...(hint ? { hint } : {}), ...(cause === undefined ? {} : { cause }) });
}

function runHelper(bin: string, args: string[], pkg: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-1000)));
    child.once('error', (e) => {
      const code = (e as NodeJS.ErrnoException).code;
      reject(code === 'ENOENT' ? rootlessError(`${bin} not found`, `install the Debian package "${pkg}"`, e) : rootlessError(`cannot run ${bin}: ${e.message}`, undefined, e));
    });
    child.once('close', (code) => {
      if (code === 0) resolve();
      else reject(rootlessError(`${bin} refused the mapping: ${stderr.trim().split('\n').pop() || `exit ${code}`}`, `check the ranges in /etc/subuid and /etc/subgid (${USAGE_HINT} USER)`));
    });
  });
}

function mapArgs(pid: number, map: IdMapping[]): string[] {
  return [String(pid), ...map.flatMap((m) => [String(m.inner), String(m.outer), String(m.count)])];
}

/** Writes the namespace's mappings for `pid` (in the new user namespace, not yet mapped). */
async function writeMappings(pid: number, plan: MappingPlan): Promise<void> {
  const s = plan.session;
  if (s.single) {
    // the owner of a namespace may map its own ids itself (after denying setgroups), as `unshare -r` does
    writeFileSync(`/proc/${pid}/setgroups`, 'deny');
    writeFileSync(`/proc/${pid}/uid_map`, `0 ${s.uid} 1\n`);
    writeFileSync(`/proc/${pid}/gid_map`, `0 ${s.gid} 1\n`);
    return;
  }
  await runHelper('newuidmap', mapArgs(pid, s.uidMap), 'uidmap');
  await runHelper('newgidmap', mapArgs(pid, s.gidMap), 'uidmap');
}

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function signalNumber(sig: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[sig] ?? 1;
}

// In the shell: tell kiln the namespace exists, wait for "go" (sent once the
// mappings are written), drop the socket and become node.
// unshare's own stderr is a pipe kiln reads (its failure becomes part of one
// line); node gets the real stderr (fd 4), so a terminal stays a terminal.
const WAIT_SCRIPT = 'echo r >&3 && read -r go <&3 && [ "$go" = go ] && exec "$@" 2>&4 3>&- 4>&-; exit 125';

/**
 * Runs this kiln invocation again inside a fresh user + mount namespace and
 * returns its exit status. Signals that reach this process are passed on;
 * the child runs in its own process group so a terminal's ^C arrives once.
 */
export async function runInUserNamespace(argv: string[], entry: string = process.argv[1] ?? ''): Promise<number> {
  const blocker = userNamespaceBlocker();
  if (blocker) throw rootlessError(`unprivileged user namespaces are disabled (${blocker})`, 'an administrator can enable them with sysctl, or run kiln as root');
  if (!existsSync('/proc/self/uid_map')) throw rootlessError('this kernel has no user namespaces (CONFIG_USER_NS)');
  const plan = planMapping();
  if (plan.session.single) process.stderr.write(`kiln: ${singleIdNotice(plan)}\n`);
  mkdirSync(plan.session.runtimeRoot, { recursive: true, mode: 0o700 });

  const child: ChildProcess = spawn(
    'unshare',
    ['--user', '--mount', '--propagation', 'private', '--', '/bin/sh', '-c', WAIT_SCRIPT, 'sh', process.execPath, ...process.execArgv, entry, ...argv],
    { stdio: ['inherit', 'inherit', 'pipe', 'pipe', 2], env: { ...process.env, [SESSION_ENV]: JSON.stringify(plan.session) }, detached: true },
  );
  const control = child.stdio[3] as Duplex;
  let early = '';
  const stderr = child.stderr!;
  const onEarly = (d: Buffer): void => {
    early = (early + d.toString()).slice(-1000);
  };
  stderr.on('data', onEarly);
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  const forward = (sig: NodeJS.Signals): void => {
    child.kill(sig);
  };

  try {
    await new Promise<void>((resolve, reject) => {
      child.once('error', (e) => reject(rootlessError(`cannot start unshare: ${e.message}`, 'install util-linux', e)));
      control.once('data', () => resolve());
      void closed.then(() => {
        const why = early.trim().split('\n').pop() ?? '';
        reject(rootlessError(`cannot create a user namespace${why ? `: ${why.replace(/^unshare: /, '')}` : ''}`, 'check that unprivileged user namespaces are allowed (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone)'));
      });
    });
    await writeMappings(child.pid!, plan);
  } catch (e) {
    child.kill('SIGKILL');
    await closed;
    throw e;
  }
  stderr.off('data', onEarly);
  stderr.resume();
  for (const s of SIGNALS) process.on(s, forward);
  control.end('go\n');
  try {
    const { code, signal } = await closed;
    return code ?? 128 + signalNumber(signal ?? 'SIGKILL');
  } finally {
    for (const s of SIGNALS) process.off(s, forward);
  }
}
