import { readFileSync } from 'node:fs';
import { KilnError } from '../errors/index.js';
import type { OciRlimit } from './oci-spec.js';

/**
 * RUN inherits kiln's own rlimits, written out explicitly: left implicit, the
 * runtime's Go startup would raise RLIMIT_NOFILE's soft limit. A `--ulimit`
 * may lower a limit but never ask above kiln's hard limit (even root cannot
 * raise it without CAP_SYS_RESOURCE, and runc would fail the whole RUN).
 */

export const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

const PROC_NAMES: Record<string, string> = {
  'Max cpu time': 'RLIMIT_CPU',
  'Max file size': 'RLIMIT_FSIZE',
  'Max data size': 'RLIMIT_DATA',
  'Max stack size': 'RLIMIT_STACK',
  'Max core file size': 'RLIMIT_CORE',
  'Max resident set': 'RLIMIT_RSS',
  'Max processes': 'RLIMIT_NPROC',
  'Max open files': 'RLIMIT_NOFILE',
  'Max locked memory': 'RLIMIT_MEMLOCK',
  'Max address space': 'RLIMIT_AS',
  'Max file locks': 'RLIMIT_LOCKS',
  'Max pending signals': 'RLIMIT_SIGPENDING',
  'Max msgqueue size': 'RLIMIT_MSGQUEUE',
  'Max nice priority': 'RLIMIT_NICE',
  'Max realtime priority': 'RLIMIT_RTPRIO',
  'Max realtime timeout': 'RLIMIT_RTTIME',
};

/** Docker's --ulimit names. */
const ULIMIT_NAMES: Record<string, string> = {
  core: 'RLIMIT_CORE', cpu: 'RLIMIT_CPU', data: 'RLIMIT_DATA', fsize: 'RLIMIT_FSIZE', locks: 'RLIMIT_LOCKS', memlock: 'RLIMIT_MEMLOCK',
  msgqueue: 'RLIMIT_MSGQUEUE', nice: 'RLIMIT_NICE', nofile: 'RLIMIT_NOFILE', nproc: 'RLIMIT_NPROC', rss: 'RLIMIT_RSS',
  rtprio: 'RLIMIT_RTPRIO', rttime: 'RLIMIT_RTTIME', sigpending: 'RLIMIT_SIGPENDING', stack: 'RLIMIT_STACK', as: 'RLIMIT_AS',
};

export interface Ulimit {
  /** Docker's name (nofile, nproc, …). */
  name: string;
  /** -1 for unlimited. */
  soft: number;
  hard: number;
}

function parseLimit(s: string): bigint {
  return s === 'unlimited' ? RLIM_INFINITY : BigInt(s);
}

let inherited: OciRlimit[] | undefined;

export function inheritedRlimits(): OciRlimit[] {
  if (inherited) return inherited.map((r) => ({ ...r }));
  const out: OciRlimit[] = [];
  for (const line of readFileSync('/proc/self/limits', 'utf8').split('\n').slice(1)) {
    const m = /^(.+?)\s{2,}(\S+)\s+(\S+)/.exec(line);
    if (!m) continue;
    const type = PROC_NAMES[(m[1] ?? '').trim()];
    if (!type) continue;
    out.push({ type, soft: parseLimit(m[2] ?? ''), hard: parseLimit(m[3] ?? '') });
  }
  inherited = out;
  return out.map((r) => ({ ...r }));
}

export function applyUlimits(base: OciRlimit[], ulimits: Ulimit[] = []): OciRlimit[] {
  const out = base.map((r) => ({ ...r }));
  for (const u of ulimits) {
    const type = ULIMIT_NAMES[u.name] ?? (u.name.startsWith('RLIMIT_') ? u.name : undefined);
    if (!type) throw new KilnError('USAGE', `unknown ulimit "${u.name}"`);
    const soft = u.soft < 0 ? RLIM_INFINITY : BigInt(u.soft);
    const hard = u.hard < 0 ? RLIM_INFINITY : BigInt(u.hard);
    if (soft > hard) throw new KilnError('USAGE', `ulimit ${u.name}: soft limit ${u.soft} exceeds hard limit ${u.hard}`);
    const cur = out.find((r) => r.type === type);
    if (cur && hard > cur.hard) {
      throw new KilnError('SANDBOX', `ulimit ${u.name}=${u.soft}:${u.hard} exceeds kiln's own hard limit ${cur.hard === RLIM_INFINITY ? 'unlimited' : cur.hard.toString()}`, {
        hint: 'raise the limit kiln runs with, or ask for less',
      });
    }
    if (cur) {
      cur.soft = soft;
      cur.hard = hard;
    } else out.push({ type, soft, hard });
  }
  return out;
}
