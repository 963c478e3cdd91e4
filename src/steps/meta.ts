import path from 'node:path';
import type { ContainerConfig } from '../image/types.js';
import { setEnv } from '../image/config.js';
import type { CommandArgs, Instruction } from '../frontend/instructions.js';
import { KilnError } from '../errors/index.js';

/** Instructions that change only the image config, never the file system (WORKDIR may also add a layer: see workdir.ts). */
export type MetaInstruction = Extract<
  Instruction,
  {
    kind:
      | 'ENV'
      | 'LABEL'
      | 'MAINTAINER'
      | 'CMD'
      | 'ENTRYPOINT'
      | 'WORKDIR'
      | 'USER'
      | 'EXPOSE'
      | 'VOLUME'
      | 'STOPSIGNAL'
      | 'HEALTHCHECK'
      | 'SHELL'
      | 'ONBUILD';
  }
>;

const META_KINDS = new Set<string>([
  'ENV', 'LABEL', 'MAINTAINER', 'CMD', 'ENTRYPOINT', 'WORKDIR', 'USER', 'EXPOSE', 'VOLUME', 'STOPSIGNAL', 'HEALTHCHECK', 'SHELL', 'ONBUILD',
]);

export function isMetaInstruction(i: Instruction): i is MetaInstruction {
  return META_KINDS.has(i.kind);
}

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** State the config changes depend on besides the config itself. */
export interface MetaState {
  config: ContainerConfig;
  author?: string | undefined;
  /** Whether CMD was set in this stage: an ENTRYPOINT resets only an inherited CMD. */
  cmdSetInStage: boolean;
}

/**
 * Applies one expanded metadata instruction to `state.config` IN PLACE and
 * returns the updated state. The caller owns the config (the solver deep-copies
 * it once per stage): copying it per step made a Dockerfile of N LABEL or ENV
 * lines cost O(N²).
 */
export function applyMeta(state: MetaState, instr: MetaInstruction, file: string): MetaState {
  const config: ContainerConfig = state.config;
  let { author, cmdSetInStage } = state;
  switch (instr.kind) {
    case 'ENV':
      config.Env ??= [];
      setEnv(config.Env, instr.pairs);
      break;
    case 'LABEL':
      config.Labels ??= {};
      for (const p of instr.pairs) config.Labels[p.key] = p.value;
      break;
    case 'MAINTAINER':
      author = instr.maintainer;
      break;
    // An empty or cleared list is left out of the config, as BuildKit's JSON (omitempty) leaves it:
    // `"Cmd": null` or `[]` would make another image digest for the same image
    case 'CMD':
      setList(config, 'Cmd', commandLine(instr.cmd, config.Shell));
      // BuildKit's dispatchCmd marks it (Docker's Windows flag, kept for the digest's sake)
      config.ArgsEscaped = true;
      cmdSetInStage = true;
      break;
    case 'ENTRYPOINT':
      setList(config, 'Entrypoint', commandLine(instr.cmd, config.Shell));
      if (!cmdSetInStage) delete config.Cmd;
      break;
    case 'WORKDIR':
      config.WorkingDir = resolveWorkdir(config.WorkingDir, instr.path);
      break;
    case 'USER':
      config.User = instr.user;
      break;
    case 'EXPOSE': {
      config.ExposedPorts ??= {};
      for (const p of instr.ports) for (const port of expandPorts(p, file, instr.range.start.line)) config.ExposedPorts[port] = {};
      break;
    }
    case 'VOLUME':
      config.Volumes ??= {};
      for (const v of instr.paths) {
        if (v.trim() === '') throw new KilnError('DOCKERFILE_PLAN', 'VOLUME specified can not be an empty string', { location: { file, line: instr.range.start.line } });
        config.Volumes[v] = {};
      }
      break;
    case 'STOPSIGNAL':
      if (!isSignal(instr.signal)) throw new KilnError('DOCKERFILE_PLAN', `STOPSIGNAL: invalid signal "${instr.signal}"`, { location: { file, line: instr.range.start.line } });
      config.StopSignal = instr.signal;
      break;
    case 'HEALTHCHECK':
      if (instr.test.type === 'NONE') {
        config.Healthcheck = { Test: ['NONE'] };
      } else {
        const test = instr.test.cmd.form === 'exec' ? ['CMD', ...instr.test.cmd.args] : ['CMD-SHELL', instr.test.cmd.text];
        const o = instr.options;
        config.Healthcheck = {
          Test: test,
          ...(o.interval !== undefined ? { Interval: o.interval } : {}),
          ...(o.timeout !== undefined ? { Timeout: o.timeout } : {}),
          ...(o.startPeriod !== undefined ? { StartPeriod: o.startPeriod } : {}),
          ...(o.startInterval !== undefined ? { StartInterval: o.startInterval } : {}),
          ...(o.retries !== undefined ? { Retries: o.retries } : {}),
        };
      }
      break;
    case 'SHELL':
      config.Shell = [...instr.shell];
      break;
    case 'ONBUILD':
      config.OnBuild = [...(config.OnBuild ?? []), instr.triggerText];
      break;
  }
  return { config, author, cmdSetInStage };
}

const SIGNAL_NAMES = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT',
  'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
  'RTMIN', 'RTMAX', ...Array.from({ length: 15 }, (_, i) => `RTMIN+${i + 1}`), ...Array.from({ length: 14 }, (_, i) => `RTMAX-${i + 1}`),
]);

/**
 * Whether STOPSIGNAL names a signal, as moby's signal.ParseSignal (which BuildKit calls) takes it: a
 * Linux signal name with or without `SIG`, in any case, or a number from 1 to 255.
 */
export function isSignal(raw: string): boolean {
  if (/^\d+$/.test(raw)) return Number(raw) >= 1 && Number(raw) <= 255;
  return SIGNAL_NAMES.has(raw.toUpperCase().replace(/^SIG/, ''));
}

function setList(config: ContainerConfig, key: 'Cmd' | 'Entrypoint', list: string[]): void {
  if (list.length > 0) config[key] = list;
  else delete config[key];
}

/** Shell form runs through the stage's SHELL, exec form as written. */
export function commandLine(cmd: CommandArgs, shell: string[] | undefined): string[] {
  return cmd.form === 'exec' ? [...cmd.args] : [...(shell ?? DEFAULT_SHELL), cmd.text];
}

/** Docker chains relative WORKDIRs onto the previous one and cleans the result. */
export function resolveWorkdir(current: string | undefined, next: string): string {
  const base = current && current !== '' ? current : '/';
  return path.posix.resolve(base, next);
}

/**
 * `80` → `80/tcp`, `8000-8002/udp` → three ports, as Docker records them. A host part
 * (`8080:80`, `127.0.0.1:8080:80`, `[::1]:8080:80`) is checked and dropped, as BuildKit's
 * parsePort does (its ExposeInvalidFormat check warns about it; only the container port is kept).
 */
export function expandPorts(spec: string, file: string, line: number): string[] {
  const bad = (why: string): KilnError => new KilnError('DOCKERFILE_PLAN', `invalid EXPOSE port "${spec}": ${why}`, { location: { file, line } });
  const parts = spec.trim().split(':');
  const container = parts[parts.length - 1]!;
  const hostPort = parts.length >= 2 ? parts[parts.length - 2]! : '';
  let ip = parts.length >= 3 ? parts.slice(0, -2).join(':') : '';
  const slash = container.indexOf('/');
  const portText = slash < 0 ? container : container.slice(0, slash);
  const proto = (slash < 0 ? 'tcp' : container.slice(slash + 1)).toLowerCase() || 'tcp';
  if (portText === '') throw bad('no port specified');
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw bad(`invalid proto: ${container.slice(slash + 1)}`);
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (ip !== '' && !isIpAddress(ip)) throw bad(`invalid IP address: ${ip}`);
  const [lo, hi] = portRange(portText, bad);
  if (hostPort !== '') {
    const [hlo, hhi] = portRange(hostPort, bad);
    if (hi - lo !== hhi - hlo && hi !== lo) throw bad(`invalid ranges specified for container and host Ports: ${portText} and ${hostPort}`);
  }
  const out: string[] = [];
  for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  return out;
}

/** An IPv4 or IPv6 address, checked by shape (node:net would load the network stack on every start). */
function isIpAddress(ip: string): boolean {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(ip);
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255);
  return ip.includes(':') && /^[0-9A-Fa-f:.]+$/.test(ip) && ip.split(':').length <= 8;
}

/** `80` or `8000-8002` → first and last port, each 0–65535. */
function portRange(text: string, bad: (why: string) => KilnError): [number, number] {
  const dash = text.indexOf('-');
  const num = (t: string): number => {
    if (!/^\d+$/.test(t) || Number(t) > 65535) throw bad(`invalid port ${t === '' ? '(empty)' : `"${t}"`}`);
    return Number(t);
  };
  const lo = num(dash < 0 ? text : text.slice(0, dash));
  const hi = dash < 0 ? lo : num(text.slice(dash + 1));
  if (hi < lo) throw bad(`invalid port range: ${text}`);
  return [lo, hi];
}
