/**
 * Applies Docker's variable expansion to exactly the fields Docker expands for
 * each instruction kind. The shell and exec forms of RUN, CMD and ENTRYPOINT are
 * never touched (the container's shell sees them as written); ONBUILD triggers
 * are expanded when they run in the child build.
 */
import { KilnError } from '../errors/index.js';
import type { Heredoc, Instruction, KeyValue, RunMount } from './instructions.js';
import { MountError, parseMount } from './mount.js';
import { processWord, processWords, toLookup, type ProcessOptions, type VarLookup } from './shell-lex.js';

export interface ExpandOptions {
  /** The Dockerfile's escape character. */
  escape?: '\\' | '`';
  /** File name for error locations. */
  file?: string;
  /** Reports each referenced variable that was unset (UndefinedVar check). */
  onUnset?: (name: string) => void;
}

/**
 * Returns a copy of `instr` with Docker's expansion applied, looking variables
 * up in `vars` (the stage's variables *before* this instruction: ENV over ARGs
 * in scope). Throws KilnError('EXPANSION') with the instruction's location.
 */
export function expandInstruction(instr: Instruction, vars: VarLookup, opts: ExpandOptions = {}): Instruction {
  const lookup = toLookup(vars);
  const po: ProcessOptions = { ...(opts.escape ? { escape: opts.escape } : {}), ...(opts.onUnset ? { onUnset: opts.onUnset } : {}) };
  const word = (w: string): string => processWord(w, lookup, po);
  const words = (w: string): string[] => processWords(w, lookup, po);
  const opt = (w: string | undefined): string | undefined => (w === undefined ? undefined : word(w));
  const pairs = (ps: KeyValue[]): KeyValue[] => ps.map((p) => ({ key: word(p.key), value: word(p.value) }));
  // Heredoc bodies are scripts or file contents: only `$` expansions apply (BuildKit's ExpandRaw, escape always `\`).
  const heredocBody = (hs: Heredoc[]): Heredoc[] =>
    hs.map((h) => (h.expand ? { ...h, body: processWord(h.body, lookup, { ...(opts.onUnset ? { onUnset: opts.onUnset } : {}), skipQuotes: true }) } : h));

  try {
    switch (instr.kind) {
      case 'FROM':
        return { ...instr, image: word(instr.image), ...(instr.platform !== undefined ? { platform: word(instr.platform) } : {}) };
      case 'RUN':
        return { ...instr, mounts: instr.mounts.map((m) => expandMount(m, word)) };
      case 'COPY':
        return {
          ...instr, sources: instr.sources.map(word), dest: word(instr.dest), heredocs: heredocBody(instr.heredocs),
          exclude: instr.exclude.map(word),
          ...withOpt('from', opt(instr.from)), ...withOpt('chown', opt(instr.chown)), ...withOpt('chmod', opt(instr.chmod)),
        };
      case 'ADD':
        return {
          ...instr, sources: instr.sources.map(word), dest: word(instr.dest), heredocs: heredocBody(instr.heredocs),
          exclude: instr.exclude.map(word),
          ...withOpt('chown', opt(instr.chown)), ...withOpt('chmod', opt(instr.chmod)), ...withOpt('checksum', opt(instr.checksum)),
        };
      case 'ENV':
      case 'LABEL':
        return { ...instr, pairs: pairs(instr.pairs) };
      case 'EXPOSE':
        return { ...instr, ports: instr.ports.flatMap(words) };
      case 'VOLUME':
        return { ...instr, paths: instr.paths.map(word) };
      case 'USER':
        return { ...instr, user: word(instr.user) };
      case 'WORKDIR':
        return { ...instr, path: word(instr.path) };
      case 'STOPSIGNAL':
        return { ...instr, signal: word(instr.signal) };
      case 'ARG':
        return { ...instr, args: instr.args.map((a) => (a.default === undefined ? a : { name: a.name, default: word(a.default) })) };
      case 'CMD':
      case 'ENTRYPOINT':
      case 'SHELL':
      case 'HEALTHCHECK':
      case 'MAINTAINER':
      case 'ONBUILD':
        return instr;
    }
  } catch (e) {
    const location = { file: opts.file ?? 'Dockerfile', line: instr.range.start.line };
    if (e instanceof MountError) throw new KilnError('DOCKERFILE_PARSE', `invalid --mount: ${e.message}`, { location, ...(e.hint ? { hint: e.hint } : {}) });
    if (e instanceof KilnError && !e.location) {
      throw new KilnError(e.code, `${instr.kind}: ${e.message}`, { location, ...(e.hint ? { hint: e.hint } : {}), cause: e });
    }
    throw e;
  }
}

function expandMount(m: RunMount, word: (w: string) => string): RunMount {
  return parseMount(m.raw, word);
}

function withOpt<K extends string>(key: K, value: string | undefined): { [P in K]?: string } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: string };
}
