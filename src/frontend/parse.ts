/**
 * Syntax nodes → the typed Instruction union, with BuildKit's per-instruction
 * validation (argument counts, flags, JSON-only forms).
 */
import { DockerfileError, type TokenRef } from './dockerfile-error.js';
import { parseGoDuration } from './duration.js';
import { parseFlags, type FlagSpec } from './flags.js';
import type {
  AddInstruction, ArgDecl, CommandArgs, CopyInstruction, HealthcheckOptions, Instruction, InstructionKind, KeyValue,
  ParsedDockerfile, RunMount,
} from './instructions.js';
import { INSTRUCTION_KINDS } from './instructions.js';
import { MountError, parseMount } from './mount.js';
import { isNetworkMode, NETWORK_MODES_TEXT, type NetworkMode } from '../sandbox/network-mode.js';
import { closest } from './suggest.js';
import { parseSyntaxTree, type SyntaxNode } from './syntax-tree.js';

const FLAGS: Partial<Record<InstructionKind, FlagSpec>> = {
  FROM: { platform: 'string' },
  RUN: { mount: 'strings', network: 'string', security: 'string' },
  COPY: { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' },
  ADD: { chown: 'string', chmod: 'string', link: 'bool', checksum: 'string', 'keep-git-dir': 'bool', exclude: 'strings', unpack: 'bool' },
  HEALTHCHECK: { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' },
};

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;
const KINDS: ReadonlySet<string> = new Set(INSTRUCTION_KINDS);
const NO_FLAG_SPEC: FlagSpec = {};

/** Parses a Dockerfile into typed instructions. Throws KilnError('DOCKERFILE_PARSE') with file and line. */
export function parseDockerfile(text: string, opts: { file: string }): ParsedDockerfile {
  const tree = parseSyntaxTree(text, opts.file, (n) => toInstruction(n, opts.file));
  return { file: opts.file, directives: tree.directives, instructions: tree.nodes, warnings: tree.warnings };
}

function stringArgs(node: SyntaxNode): string[] {
  // Only ONBUILD holds a nested node; everything else is already all strings.
  if (node.args.length === 0 || typeof node.args[0] === 'string') return node.args as string[];
  return node.args.filter((a): a is string => typeof a === 'string');
}

function commandArgs(node: SyntaxNode, args: string[]): CommandArgs {
  if (node.json) return { form: 'exec', args };
  return { form: 'shell', text: args.join(' ') };
}

/** Converts one syntax node; exported for ONBUILD triggers run in a child build. */
export function toInstruction(node: SyntaxNode, file: string): Instruction {
  const line = node.startLine;
  const fail = (message: string, hint?: string, token?: TokenRef): never => {
    throw new DockerfileError('DOCKERFILE_PARSE', message, { location: { file, line }, ...(hint ? { hint } : {}), ...(token ? { token } : {}) });
  };
  const ARGUMENTS: TokenRef = { kind: 'arguments' };
  const upper = node.keyword.toUpperCase();
  if (!KINDS.has(upper)) {
    const near = closest(node.keyword, INSTRUCTION_KINDS);
    fail(`unknown instruction "${node.keyword}"`, near ? `did you mean ${near}?` : undefined, { kind: 'keyword' });
  }
  const kind = upper as InstructionKind;
  const flags = parseFlags(node.flags, FLAGS[kind] ?? NO_FLAG_SPEC, kind, file, line);
  const args = stringArgs(node);
  // Built once and extended with Object.assign: spreading objects of varying shape is
  // pathologically slow in V8 and this runs once per instruction.
  const base: { range: Instruction['range']; keyword: string; original: string; flags: string[]; comment?: string } = {
    range: { start: { line: node.startLine, column: node.startColumn }, end: { line: node.endLine, column: node.endColumn } },
    keyword: node.keyword,
    original: node.original.trim(),
    flags: node.flags,
  };
  if (node.comments.length > 0) base.comment = node.comments.join('\n');
  const exactlyOne = (): string => {
    if (args.length !== 1 || args[0] === '') fail(`${kind} requires exactly one argument`, undefined, ARGUMENTS);
    return args[0]!;
  };
  const atLeastOne = (): void => {
    if (args.length === 0) fail(`${kind} requires at least one argument`);
  };

  switch (kind) {
    case 'FROM': {
      if (!(args.length === 1 || (args.length === 3 && args[1]!.toLowerCase() === 'as'))) {
        fail('FROM requires either one or three arguments', 'FROM <image> [AS <name>]', ARGUMENTS);
      }
      const platform = flags.strings.get('platform');
      let stageName: string | undefined;
      if (args.length === 3) {
        stageName = args[2]!;
        if (!STAGE_NAME.test(stageName.toLowerCase())) {
          fail(`invalid name for build stage: "${stageName}", name can't start with a number or contain symbols`, undefined, { kind: 'stage-name' });
        }
      }
      return Object.assign(base, { kind, image: args[0]!,
        ...(stageName !== undefined ? { stageName, asKeyword: args[1]! } : {}),
        ...(platform !== undefined ? { platform } : {}),
      });
    }
    case 'RUN': {
      if (args.length === 0 && node.heredocs.length === 0) fail('RUN requires at least one argument');
      const mounts: RunMount[] = [];
      for (const raw of flags.lists.get('mount') ?? []) {
        try {
          mounts.push(parseMount(raw));
        } catch (e) {
          if (e instanceof MountError) fail(`invalid --mount=${raw}: ${e.message}`, e.hint, { kind: 'flag-value', name: 'mount', value: raw });
          throw e;
        }
      }
      const networkFlag = flags.strings.get('network');
      if (networkFlag !== undefined && !isNetworkMode(networkFlag)) {
        fail(`unsupported network mode "${networkFlag}"`, `use ${NETWORK_MODES_TEXT}`, { kind: 'flag-value', name: 'network' });
      }
      const network = networkFlag as NetworkMode | undefined;
      const security = flags.strings.get('security');
      if (security !== undefined && security !== 'sandbox' && security !== 'insecure') {
        fail(`unsupported security mode "${security}"`, 'use sandbox or insecure', { kind: 'flag-value', name: 'security' });
      }
      return Object.assign(base, { kind, cmd: commandArgs(node, args), heredocs: node.heredocs, mounts,
        ...(network !== undefined ? { network } : {}),
        ...(security !== undefined ? { security: security as 'sandbox' | 'insecure' } : {}),
      });
    }
    case 'CMD':
    case 'ENTRYPOINT':
      return Object.assign(base, { kind, cmd: commandArgs(node, args) });
    case 'SHELL':
      if (!node.json) fail('SHELL requires the arguments to be in JSON form', 'SHELL ["/bin/bash", "-c"]', ARGUMENTS);
      if (args.length === 0) fail('SHELL requires at least one argument');
      return Object.assign(base, { kind, shell: args });
    case 'ENV':
    case 'LABEL': {
      if (args.length === 0) fail(`${kind} requires at least one argument`);
      const pairs: KeyValue[] = [];
      for (let i = 0; i < args.length; i += 3) {
        const key = args[i]!;
        if (key === '') fail(`${kind} names can not be blank`);
        pairs.push({ key, value: args[i + 1] ?? '' });
      }
      return Object.assign(base, { kind, pairs, legacy: args[2] === '' });
    }
    case 'MAINTAINER':
      return Object.assign(base, { kind, maintainer: exactlyOne() });
    case 'EXPOSE':
      atLeastOne();
      return Object.assign(base, { kind, ports: args });
    case 'ADD':
    case 'COPY': {
      if (args.length < 2) {
        fail(`${kind} requires at least two arguments, but only ${args.length === 0 ? 'none was' : 'one was'} provided. Destination could not be determined.`);
      }
      const common = Object.assign(base, {
        sources: args.slice(0, -1),
        dest: args[args.length - 1]!,
        heredocs: node.heredocs,
        link: flags.bools.get('link') ?? false,
        parents: flags.bools.get('parents') ?? false,
        exclude: flags.lists.get('exclude') ?? [],
        ...optional('chown', flags.strings.get('chown')),
        ...optional('chmod', flags.strings.get('chmod')),
      });
      if (kind === 'COPY') {
        const copy: CopyInstruction = Object.assign(common, { kind, ...optional('from', flags.strings.get('from')) });
        return copy;
      }
      const add: AddInstruction = Object.assign(common, {
        kind,
        ...optional('checksum', flags.strings.get('checksum')),
        ...optional('keepGitDir', flags.bools.get('keep-git-dir')),
        ...optional('unpack', flags.bools.get('unpack')),
      });
      return add;
    }
    case 'VOLUME':
      atLeastOne();
      for (const p of args) if (p.trim() === '') fail('VOLUME specified can not be an empty string', undefined, ARGUMENTS);
      return Object.assign(base, { kind, paths: args });
    case 'USER':
      return Object.assign(base, { kind, user: exactlyOne() });
    case 'WORKDIR':
      return Object.assign(base, { kind, path: exactlyOne() });
    case 'STOPSIGNAL':
      return Object.assign(base, { kind, signal: exactlyOne() });
    case 'ARG': {
      if (args.length === 0) fail('ARG requires at least one argument', 'ARG NAME[=default]');
      const decls: ArgDecl[] = args.map((w) => {
        const eq = w.indexOf('=');
        const name = eq < 0 ? w : w.slice(0, eq);
        if (name === '') fail(`ARG requires a name: "${w}"`, 'ARG NAME[=default]', { kind: 'argument', text: w });
        return eq < 0 ? { name } : { name, default: w.slice(eq + 1) };
      });
      return Object.assign(base, { kind, args: decls });
    }
    case 'ONBUILD': {
      const sub = node.args[0];
      if (sub === undefined || typeof sub === 'string') return fail('ONBUILD requires at least one argument');
      const t = sub.keyword.toUpperCase();
      if (t === 'ONBUILD') fail('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed', undefined, { kind: 'trigger' });
      if (t === 'FROM' || t === 'MAINTAINER') fail(`${t} isn't allowed as an ONBUILD trigger`, undefined, { kind: 'trigger' });
      const trigger = toInstruction({ ...sub, startLine: node.startLine, startColumn: node.startColumn, endLine: node.endLine, endColumn: node.endColumn }, file);
      return Object.assign(base, { kind, trigger, triggerText: node.rest });
    }
    case 'HEALTHCHECK': {
      if (args.length === 0) fail('HEALTHCHECK requires at least one argument', 'HEALTHCHECK CMD <command> or HEALTHCHECK NONE');
      const typ = args[0]!.toUpperCase();
      if (typ === 'NONE') {
        if (args.length !== 1) fail('HEALTHCHECK NONE takes no arguments', undefined, ARGUMENTS);
        if (node.flags.length > 0) fail('HEALTHCHECK NONE takes no flags');
        return Object.assign(base, { kind, test: { type: 'NONE' as const }, options: {} });
      }
      if (typ !== 'CMD') fail(`Unknown type "${args[0]}" in HEALTHCHECK (try CMD)`, undefined, { kind: 'argument', text: args[0] ?? '' });
      if (args.length < 2) fail('Missing command after HEALTHCHECK CMD', undefined, ARGUMENTS);
      const options: HealthcheckOptions = {};
      const dur = (flag: string, field: 'interval' | 'timeout' | 'startPeriod' | 'startInterval', label: string): void => {
        const v = flags.strings.get(flag);
        if (v === undefined) return;
        const ns = parseGoDuration(v);
        if (ns === undefined) return fail(`invalid duration "${v}" for --${flag}`, 'use e.g. 30s, 1m30s, 500ms', { kind: 'flag-value', name: flag });
        if (ns !== 0 && ns < 1e6) fail(`${label} "${v}" cannot be less than 1ms`, undefined, { kind: 'flag-value', name: flag });
        if (ns < 0) fail(`${label} "${v}" cannot be negative`, undefined, { kind: 'flag-value', name: flag });
        options[field] = ns;
      };
      dur('interval', 'interval', 'Interval');
      dur('timeout', 'timeout', 'Timeout');
      dur('start-period', 'startPeriod', 'StartPeriod');
      dur('start-interval', 'startInterval', 'StartInterval');
      const r = flags.strings.get('retries');
      if (r !== undefined) {
        if (!/^[+-]?\d+$/.test(r)) fail(`invalid value "${r}" for --retries`, 'expected a whole number', { kind: 'flag-value', name: 'retries' });
        const n = parseInt(r, 10);
        if (n < 0) fail(`--retries cannot be negative (${n})`, undefined, { kind: 'flag-value', name: 'retries' });
        options.retries = n;
      }
      return Object.assign(base, { kind, test: { type: 'CMD' as const, cmd: commandArgs(node, args.slice(1)) }, options });
    }
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}
