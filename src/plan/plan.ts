/**
 * ParsedDockerfile → BuildPlan: stages, global ARGs, predefined args,
 * dependency edges, target selection and pruning.
 */
import { KilnError } from '../errors/index.js';
import type { FromInstruction, Instruction, ParsedDockerfile } from '../frontend/instructions.js';
import { processWord } from '../frontend/shell-lex.js';
import { DockerfileError, type TokenRef } from '../frontend/dockerfile-error.js';
import { closest } from '../frontend/suggest.js';
import { isPredefinedArg } from '../frontend/builtin-args.js';
import { predefinedArgs } from './predefined.js';
import { VarScope } from '../frontend/var-scope.js';
import type { BuildPlan, PlanOptions, PlanStage, PredefinedArg, StageBase } from './types.js';

/** A stage as written, before pruning and dependency resolution. */
export interface RawStage {
  index: number;
  /** Lower-cased. */
  name?: string;
  from: FromInstruction;
  instructions: Instruction[];
}

/** Splits a parse into global ARG instructions and stages; errors on instructions before the first FROM. */
export function splitStages(parsed: ParsedDockerfile): { globalArgs: Instruction[]; stages: RawStage[] } {
  const globalArgs: Instruction[] = [];
  const stages: RawStage[] = [];
  const names = new Map<string, number>();
  for (const instr of parsed.instructions) {
    if (instr.kind === 'FROM') {
      const stage: RawStage = { index: stages.length, from: instr, instructions: [] };
      if (instr.stageName !== undefined) {
        const name = instr.stageName.toLowerCase();
        const prev = names.get(name);
        if (prev !== undefined) {
          throw planError(parsed.file, instr.range.start.line, `duplicate stage name "${instr.stageName}"`,
            `stage ${prev} (line ${stages[prev]!.from.range.start.line}) already uses this name`, { kind: 'stage-name' });
        }
        names.set(name, stage.index);
        stage.name = name;
      }
      stages.push(stage);
    } else if (stages.length === 0) {
      if (instr.kind !== 'ARG') {
        throw planError(parsed.file, instr.range.start.line, `${instr.kind} before the first FROM`, 'only ARG may come before the first FROM');
      }
      globalArgs.push(instr);
    } else {
      stages[stages.length - 1]!.instructions.push(instr);
    }
  }
  if (stages.length === 0) {
    const line = parsed.instructions[parsed.instructions.length - 1]?.range.end.line ?? 1;
    throw planError(parsed.file, line, 'no FROM instruction: a Dockerfile needs at least one build stage', 'add FROM <image> (or FROM scratch)');
  }
  return { globalArgs, stages };
}

function planError(file: string, line: number, message: string, hint?: string, token?: TokenRef): DockerfileError {
  return new DockerfileError('DOCKERFILE_PLAN', message, { location: { file, line }, ...(hint ? { hint } : {}), ...(token ? { token } : {}) });
}

/**
 * BuildKit names the stage or image of COPY --from literally: a value that
 * expansion would change (`$VAR`, `${VAR:-x}`, quotes, escapes) is refused,
 * never expanded, so every build of a Dockerfile reads from the same source.
 */
function refuseFromExpansion(from: string, at: Instruction, parsed: ParsedDockerfile): void {
  let same: boolean;
  try {
    same = processWord(from, () => undefined, { escape: parsed.directives.escape }) === from;
  } catch {
    same = false;
  }
  if (!same) {
    throw planError(parsed.file, at.range.start.line, `variable expansion is not supported for --from ("${from}")`,
      'define a new stage with FROM using ARG from global scope as a workaround');
  }
}

/** Resolves the global ARGs: build arg > expanded default; predefined args visible to their defaults. */
export function resolveGlobalArgs(
  globalArgs: Instruction[], buildArgs: Record<string, string>, predefined: PredefinedArg[], parsed: ParsedDockerfile,
): Record<string, string> {
  const values: Record<string, string> = {};
  const lookup = (n: string): string | undefined =>
    Object.hasOwn(values, n) ? values[n] : predefined.find((p) => p.name === n && !p.hidden)?.value;
  for (const instr of globalArgs) {
    if (instr.kind !== 'ARG') continue;
    for (const decl of instr.args) {
      const b = buildArgs[decl.name];
      if (b !== undefined) values[decl.name] = b;
      else if (decl.default !== undefined) values[decl.name] = expandAt(decl.default, lookup, parsed, instr);
      else delete values[decl.name];
    }
  }
  return values;
}

function expandAt(word: string, lookup: (n: string) => string | undefined, parsed: ParsedDockerfile, at: Instruction): string {
  try {
    return processWord(word, lookup, { escape: parsed.directives.escape });
  } catch (e) {
    if (e instanceof KilnError) throw new KilnError('EXPANSION', e.message, { location: { file: parsed.file, line: at.range.start.line } });
    throw e;
  }
}

export function planBuild(parsed: ParsedDockerfile, opts: PlanOptions): BuildPlan {
  const { globalArgs: globalArgInstrs, stages: raw } = splitStages(parsed);
  const predefined = predefinedArgs(opts.targetPlatform, opts.buildPlatform, opts.buildArgs, opts.target);
  const globalArgs = resolveGlobalArgs(globalArgInstrs, opts.buildArgs, predefined, parsed);
  const fromLookup = (n: string): string | undefined =>
    Object.hasOwn(globalArgs, n) ? globalArgs[n] : predefined.find((p) => p.name === n && !p.hidden)?.value;
  const byName = new Map<string, number>();
  for (const s of raw) if (s.name !== undefined) byName.set(s.name, s.index);

  const resolveRef = (ref: string, user: number, line: number, what: string, token?: TokenRef): { stage: number } | { image: string } => {
    if (/^\d+$/.test(ref)) {
      const n = Number(ref);
      if (n >= user) {
        throw planError(parsed.file, line, `${what} refers to stage ${n}, which is not defined before stage ${user}`,
          n >= raw.length ? `the Dockerfile has ${raw.length} stage(s), numbered from 0` : 'a stage can only use earlier stages', token);
      }
      return { stage: n };
    }
    const idx = byName.get(ref.toLowerCase());
    if (idx !== undefined) {
      if (idx === user) throw planError(parsed.file, line, `${what} refers to its own stage "${ref}" (circular dependency)`, undefined, token);
      if (idx > user) throw planError(parsed.file, line, `${what} refers to stage "${ref}", which is defined later (line ${raw[idx]!.from.range.start.line})`, 'move that stage above this one', token);
      return { stage: idx };
    }
    return { image: ref };
  };

  const stages: PlanStage[] = raw.map((s) => {
    const line = s.from.range.start.line;
    if (s.name !== undefined && opts.namedContexts?.has(s.name)) {
      const platform = s.from.platform !== undefined ? expandAt(s.from.platform, fromLookup, parsed, s.from) : undefined;
      return {
        index: s.index, name: s.name, base: { kind: 'image', ref: s.name }, ...(platform !== undefined ? { platform } : {}),
        from: s.from, instructions: [], deps: [], globalArgs, declaredArgs: [],
      };
    }
    const image = expandAt(s.from.image, fromLookup, parsed, s.from);
    if (image === '') throw planError(parsed.file, line, `base name (${s.from.image}) should not be blank`, 'set the ARG used in FROM', { kind: 'image' });
    let base: StageBase;
    if (image.toLowerCase() === 'scratch') base = { kind: 'scratch' };
    else {
      const r = resolveRef(image, s.index, line, 'FROM', { kind: 'image' });
      base = 'stage' in r ? { kind: 'stage', index: r.stage } : { kind: 'image', ref: r.image };
    }
    const platform = s.from.platform !== undefined ? expandAt(s.from.platform, fromLookup, parsed, s.from) : undefined;
    const deps = new Set<number>();
    if (base.kind === 'stage') deps.add(base.index);
    const declaredArgs: string[] = [];
    // Walk the stage with plan-time scope (no base-image ENV yet) to resolve --from values that use ARGs.
    const vars = new VarScope({ globalArgs, predefined, buildArgs: opts.buildArgs, escape: parsed.directives.escape, file: parsed.file });
    const addRef = (ref: string, at: Instruction, what: string, token?: TokenRef): void => {
      const r = resolveRef(ref, s.index, at.range.start.line, what, token);
      // an image ref is only checked here; the solver resolves it when the step needs it
      if ('stage' in r) deps.add(r.stage);
    };
    const addRefs = (instruction: Instruction, at: Instruction): void => {
      if (instruction.kind === 'COPY' && instruction.from !== undefined) {
        refuseFromExpansion(instruction.from, at, parsed);
        addRef(instruction.from, at, 'COPY --from', { kind: 'flag-value', name: 'from' });
      }
      if (instruction.kind === 'RUN') {
        for (const m of instruction.mounts) if ((m.type === 'bind' || m.type === 'cache') && m.from !== undefined) addRef(m.from, at, 'RUN --mount from');
      }
    };
    // Only a --from value holding `$` needs the stage's ARG/ENV scope; walk for it only then.
    const needsScope = s.instructions.some((i) =>
      (i.kind === 'RUN' && i.mounts.some((m) => (m.type === 'bind' || m.type === 'cache') && m.from !== undefined && m.raw.includes('$'))));
    for (const instr of s.instructions) {
      if (instr.kind === 'ARG') for (const a of instr.args) declaredArgs.push(a.name);
      const hasRef = (instr.kind === 'COPY' && instr.from !== undefined) ||
        (instr.kind === 'RUN' && instr.mounts.some((m) => (m.type === 'bind' || m.type === 'cache') && m.from !== undefined));
      if (!needsScope) {
        if (hasRef) addRefs(instr, instr);
        continue;
      }
      if (!hasRef && instr.kind !== 'ARG' && instr.kind !== 'ENV') continue;
      addRefs(vars.advance(instr), instr);
    }
    return {
      index: s.index,
      ...(s.name !== undefined ? { name: s.name } : {}),
      base,
      ...(platform !== undefined ? { platform } : {}),
      from: s.from,
      instructions: s.instructions,
      deps: [...deps].sort((a, b) => a - b),
      globalArgs,
      declaredArgs,
    };
  });

  let targetIndex = raw.length - 1;
  if (opts.target !== undefined && opts.target !== '') {
    const idx = byName.get(opts.target.toLowerCase());
    if (idx === undefined) {
      const names = raw.flatMap((s) => (s.from.stageName !== undefined ? [s.from.stageName] : []));
      const near = closest(opts.target, names);
      throw planError(parsed.file, raw[raw.length - 1]!.from.range.start.line, `target stage "${opts.target}" could not be found`,
        near ? `did you mean ${near}?` : names.length ? `stages: ${names.join(', ')}` : 'the Dockerfile has no named stages');
    }
    targetIndex = idx;
  }

  // Prune to what the target needs; deps point backwards, so index order is topological.
  const needed = new Set<number>();
  const visit = (i: number): void => {
    if (needed.has(i)) return;
    needed.add(i);
    for (const d of stages[i]!.deps) visit(d);
  };
  visit(targetIndex);
  const kept = stages.filter((s) => needed.has(s.index));

  const declared = new Set<string>();
  for (const instr of globalArgInstrs) if (instr.kind === 'ARG') for (const a of instr.args) declared.add(a.name);
  for (const s of kept) for (const n of s.declaredArgs) declared.add(n);
  const unusedBuildArgs = Object.keys(opts.buildArgs).filter((k) => !declared.has(k) && !isPredefinedArg(k)).sort();
  // Unused build args are reported through `unusedBuildArgs` only, so callers print them once.

  return {
    stages: kept,
    allStages: stages,
    targetIndex,
    globalArgs,
    predefinedArgs: predefined,
    buildArgs: { ...opts.buildArgs },
    unusedBuildArgs,
    targetPlatform: opts.targetPlatform,
    buildPlatform: opts.buildPlatform,
    file: parsed.file,
  };
}
