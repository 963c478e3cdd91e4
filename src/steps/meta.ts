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
    case 'CMD':
      config.Cmd = commandLine(instr.cmd, config.Shell);
      cmdSetInStage = true;
      break;
    case 'ENTRYPOINT':
      config.Entrypoint = commandLine(instr.cmd, config.Shell);
      if (!cmdSetInStage) config.Cmd = null;
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

/** Shell form runs through the stage's SHELL, exec form as written. */
export function commandLine(cmd: CommandArgs, shell: string[] | undefined): string[] {
  return cmd.form === 'exec' ? [...cmd.args] : [...(shell ?? DEFAULT_SHELL), cmd.text];
}

/** Docker chains relative WORKDIRs onto the previous one and cleans the result. */
export function resolveWorkdir(current: string | undefined, next: string): string {
  const base = current && current !== '' ? current : '/';
  return path.posix.resolve(base, next);
}

/** `80` → `80/tcp`, `8000-8002/udp` → three ports, as Docker records them. */
export function expandPorts(spec: string, file: string, line: number): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/([A-Za-z]+))?$/.exec(spec.trim());
  if (!m) throw new KilnError('DOCKERFILE_PLAN', `invalid EXPOSE port "${spec}"`, { location: { file, line } });
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (!['tcp', 'udp', 'sctp'].includes(proto)) throw new KilnError('DOCKERFILE_PLAN', `invalid EXPOSE protocol "${m[3]}" in "${spec}"`, { location: { file, line } });
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > 65535 || hi > 65535 || hi < lo) throw new KilnError('DOCKERFILE_PLAN', `invalid EXPOSE port range "${spec}"`, { location: { file, line } });
  const out: string[] = [];
  for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  return out;
}
