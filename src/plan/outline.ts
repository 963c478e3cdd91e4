/**
 * `kiln outline` / `kiln targets`: what a target needs from the user (build
 * args, secrets, ssh), like `docker buildx build --call outline|targets`.
 */
import type { ParsedDockerfile, RunMount } from '../frontend/instructions.js';
import { processWord } from '../frontend/shell-lex.js';
import type { Platform } from '../image/types.js';
import { planBuild } from './plan.js';
import { isPlatformArg } from '../frontend/builtin-args.js';

export interface OutlineArg {
  name: string;
  /** Effective value for this build (build arg, else default, else global value); undefined when unset. */
  value?: string;
  /** The comment above the ARG instruction. */
  description?: string;
  /** 1-based line of the declaration. */
  line: number;
  /** Declared before the first FROM. */
  global: boolean;
}

export interface OutlineUse {
  id: string;
  required: boolean;
  line: number;
}

export interface Outline {
  /** Target stage name (undefined for an unnamed last stage). */
  name?: string;
  index: number;
  description?: string;
  args: OutlineArg[];
  secrets: OutlineUse[];
  ssh: OutlineUse[];
  /** Stages built for this target, in order. */
  stages: Array<{ index: number; name?: string; base: string }>;
}

export interface TargetInfo {
  index: number;
  name?: string;
  description?: string;
  base: string;
  line: number;
  /** The stage built when no --target is given. */
  default: boolean;
}

export interface OutlineOptions {
  target?: string;
  buildArgs?: Record<string, string>;
  targetPlatform?: Platform;
  buildPlatform?: Platform;
}

const LINUX_AMD64: Platform = { os: 'linux', architecture: 'amd64' };

/** A comment that starts with the described name drops it: `# VERSION sets the version` → `sets the version`. */
function describe(comment: string | undefined, name: string | undefined): string | undefined {
  if (!comment) return undefined;
  const text = comment.split('\n').join(' ').trim();
  if (name && text.toLowerCase().startsWith(name.toLowerCase() + ' ')) return text.slice(name.length + 1).trim() || undefined;
  return text || undefined;
}

export function outline(parsed: ParsedDockerfile, opts: OutlineOptions = {}): Outline {
  const buildArgs = opts.buildArgs ?? {};
  const plan = planBuild(parsed, {
    ...(opts.target !== undefined ? { target: opts.target } : {}),
    buildArgs,
    targetPlatform: opts.targetPlatform ?? LINUX_AMD64,
    buildPlatform: opts.buildPlatform ?? LINUX_AMD64,
  });
  const args: OutlineArg[] = [];
  const seen = new Set<string>();

  // Global ARGs count when a kept FROM line (or a redeclaration in a kept stage) uses them.
  const usedGlobals = new Set<string>();
  for (const s of plan.stages) {
    const record = (w: string | undefined): void => {
      if (w === undefined) return;
      processWord(w, (n) => {
        usedGlobals.add(n);
        return plan.globalArgs[n];
      }, { escape: parsed.directives.escape });
    };
    record(s.from.image);
    record(s.from.platform);
    for (const n of s.declaredArgs) usedGlobals.add(n);
  }
  for (const instr of parsed.instructions) {
    if (instr.kind === 'FROM') break;
    if (instr.kind !== 'ARG') continue;
    for (const a of instr.args) {
      if (!usedGlobals.has(a.name) || seen.has(a.name)) continue;
      seen.add(a.name);
      const value = plan.globalArgs[a.name];
      const description = describe(instr.comment, a.name);
      args.push({ name: a.name, ...(value !== undefined ? { value } : {}), ...(description ? { description } : {}), line: instr.range.start.line, global: true });
    }
  }
  const secrets = new Map<string, OutlineUse>();
  const ssh = new Map<string, OutlineUse>();
  const addUse = (m: Map<string, OutlineUse>, mount: RunMount & { id: string; required: boolean }, line: number): void => {
    const prev = m.get(mount.id);
    if (prev) prev.required ||= mount.required;
    else m.set(mount.id, { id: mount.id, required: mount.required, line });
  };
  for (const s of plan.stages) {
    for (const instr of s.instructions) {
      if (instr.kind === 'ARG') {
        for (const a of instr.args) {
          if (seen.has(a.name) || isPlatformArg(a.name)) continue;
          seen.add(a.name);
          const value = buildArgs[a.name] ?? (a.default !== undefined ? safeExpand(a.default, plan.globalArgs, parsed.directives.escape) : plan.globalArgs[a.name]);
          const description = describe(instr.comment, a.name);
          args.push({ name: a.name, ...(value !== undefined ? { value } : {}), ...(description ? { description } : {}), line: instr.range.start.line, global: false });
        }
      } else if (instr.kind === 'RUN') {
        for (const m of instr.mounts) {
          if (m.type === 'secret') addUse(secrets, m, instr.range.start.line);
          else if (m.type === 'ssh') addUse(ssh, m, instr.range.start.line);
        }
      }
    }
  }
  const target = plan.stages[plan.stages.length - 1]!;
  const description = describe(target.from.comment, target.name);
  return {
    ...(target.name !== undefined ? { name: target.from.stageName ?? target.name } : {}),
    index: target.index,
    ...(description ? { description } : {}),
    args,
    secrets: [...secrets.values()],
    ssh: [...ssh.values()],
    stages: plan.stages.map((s) => ({ index: s.index, ...(s.name !== undefined ? { name: s.name } : {}), base: baseText(s.base) })),
  };
}

function safeExpand(word: string, vars: Record<string, string>, escape: '\\' | '`'): string {
  try {
    return processWord(word, (n) => vars[n], { escape });
  } catch {
    return word;
  }
}

function baseText(b: { kind: 'scratch' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string }): string {
  return b.kind === 'scratch' ? 'scratch' : b.kind === 'stage' ? `stage ${b.index}` : b.ref;
}

/** Every stage that can be a target (named stages and the default last stage), in file order. */
export function listTargets(parsed: ParsedDockerfile): TargetInfo[] {
  const froms = parsed.instructions.filter((i) => i.kind === 'FROM');
  return froms.flatMap((f, index) => {
    if (f.kind !== 'FROM') return [];
    const isDefault = index === froms.length - 1;
    if (f.stageName === undefined && !isDefault) return [];
    const description = describe(f.comment, f.stageName);
    return [{
      index,
      ...(f.stageName !== undefined ? { name: f.stageName } : {}),
      ...(description ? { description } : {}),
      base: f.image,
      line: f.range.start.line,
      default: isDefault,
    }];
  });
}
