/**
 * Build checks over a parsed Dockerfile (no I/O): BuildKit's rules that apply
 * to a Dockerfile plus kiln's security rules, filtered and escalated by the
 * `# check=skip=…;error=…` directive or an override with the same syntax.
 */
import type { BuildWarning, CheckDirective, FromInstruction, Instruction, ParsedDockerfile } from '../instructions.js';
import type { Locator, TokenRef } from '../locate.js';
import { processWord } from '../shell-lex.js';
import { closest } from '../suggest.js';
import { PLATFORM_ARGS, isPredefinedArg } from '../builtin-args.js';
import { VarScope } from '../var-scope.js';
import { parseCheckOptions } from '../check-directive.js';
import { ruleInfo } from './rules.js';
import { isSecretName, secretLikeValue } from './secrets.js';

export interface CheckOptions {
  /**
   * Overrides the `# check=` directive, same syntax (`skip=A,B;error=true`);
   * `kiln build` passes the BUILDKIT_DOCKERFILE_CHECK build arg here.
   */
  check?: string;
  /** Build args, so UndefinedVar and the FROM rules see the same values as the build. */
  buildArgs?: Record<string, string>;
  /** A BuildPlan (or anything with its build args): the same as passing `buildArgs`. */
  plan?: { buildArgs: Record<string, string> };
  /**
   * Base-image ENV per stage index, when known (during a build). UndefinedVar
   * runs only on stages whose starting environment is known: scratch, a stage
   * built on a known stage, or one given here.
   */
  baseEnv?: (stageIndex: number) => string[] | undefined;
  /** CopyIgnoredFile: whether a context path is excluded by .dockerignore (given once the context is known). */
  isIgnored?: (path: string) => boolean;
  /**
   * Places each warning on its offending token (`column`, `range`). `kiln
   * check` passes `createLocator(text)` from locate.ts; without it warnings
   * carry the line only, and dockerfile-ast is never loaded.
   */
  locator?: Locator;
}

/** Parses `skip=A,B;error=true` (the `# check=` directive syntax). */
export function parseCheckConfig(value: string): CheckDirective {
  // the build argument is lenient: a malformed part is skipped, as kiln has always read it
  return parseCheckOptions(value, () => {});
}

/** True when any warning is an error (exit code 1 for `kiln check`, a failed build for `kiln build`). */
export function hasCheckErrors(warnings: BuildWarning[]): boolean {
  return warnings.some((w) => w.error === true);
}

interface Stage {
  index: number;
  from: FromInstruction;
  instructions: Instruction[];
}

export function runChecks(parsed: ParsedDockerfile, opts: CheckOptions = {}): BuildWarning[] {
  const override = opts.check ?? opts.buildArgs?.BUILDKIT_DOCKERFILE_CHECK ?? opts.plan?.buildArgs.BUILDKIT_DOCKERFILE_CHECK;
  const config = override !== undefined ? parseCheckConfig(override) : (parsed.directives.check ?? { skip: [], error: false });
  const out: BuildWarning[] = [];
  const file = parsed.file;
  const escape = parsed.directives.escape;
  const locator = opts.locator;
  const warn = (rule: string, at: Instruction, message: string, token: TokenRef): void => {
    const w: BuildWarning = { rule, message, file, line: at.range.start.line };
    const range = locator?.locate(at, token);
    if (range !== undefined) {
      w.column = range.start.column;
      w.range = range;
    }
    const url = ruleInfo(rule)?.url;
    if (url) w.url = url;
    out.push(w);
  };
  for (const w of parsed.warnings) out.push({ ...w });

  const globals: Instruction[] = [];
  const stages: Stage[] = [];
  for (const instr of parsed.instructions) {
    if (instr.kind === 'FROM') stages.push({ index: stages.length, from: instr, instructions: [] });
    else if (stages.length === 0) globals.push(instr);
    else stages[stages.length - 1]!.instructions.push(instr);
  }
  const buildArgs = opts.buildArgs ?? opts.plan?.buildArgs ?? {};

  // ConsistentInstructionCasing: the majority casing wins.
  const all = parsed.instructions;
  let lower = 0;
  let upper = 0;
  for (const i of all) {
    if (i.keyword === i.keyword.toLowerCase()) lower++;
    else if (i.keyword === i.keyword.toUpperCase()) upper++;
  }
  const majority = lower > upper ? 'lowercase' : 'uppercase';
  for (const i of all) {
    const ok = majority === 'lowercase' ? i.keyword === i.keyword.toLowerCase() : i.keyword === i.keyword.toUpperCase();
    if (!ok) warn('ConsistentInstructionCasing', i, `Command '${i.keyword}' should match the case of the command majority (${majority})`, KEYWORD);
  }

  // Global ARGs: declared names and default values (build args applied).
  const globalDecl = new Set<string>();
  const globalVals: Record<string, string> = {};
  const globalDefaults: Record<string, string> = {};
  for (const g of globals) {
    if (g.kind !== 'ARG') continue;
    for (const a of g.args) {
      globalDecl.add(a.name);
      checkArgEnvName('ARG', a.name, g);
      if (a.default !== undefined) {
        const v = tryExpand(a.default, (n) => globalVals[n], escape);
        if (v !== undefined) globalDefaults[a.name] = v;
        checkSecretValue('ARG', a.name, v ?? a.default, g, a.default);
      } else delete globalDefaults[a.name];
      const b = buildArgs[a.name];
      if (b !== undefined) globalVals[a.name] = b;
      else if (globalDefaults[a.name] !== undefined) globalVals[a.name] = globalDefaults[a.name]!;
    }
  }

  function checkArgEnvName(kind: 'ARG' | 'ENV', name: string, at: Instruction): void {
    if (isSecretName(name)) warn('SecretsUsedInArgOrEnv', at, `Do not use ARG or ENV instructions for sensitive data (${kind} "${name}")`, { kind: 'key', name });
  }
  /** `written` is the value as in the Dockerfile, which bounds its range (`value` may be expanded). */
  function checkSecretValue(kind: string, key: string, value: string, at: Instruction, written: string): void {
    const what = secretLikeValue(value);
    if (what) warn('SecretInValue', at, `${kind} ${key} looks like it holds ${what}; pass credentials with RUN --mount=type=secret instead`, { kind: 'value', key, text: written });
  }

  const stageNames = new Map<string, number>();
  const finalEnvKnown = new Map<number, string[] | undefined>();
  for (const s of stages) {
    const f = s.from;
    // FROM rules.
    if (f.stageName !== undefined) {
      if (f.stageName !== f.stageName.toLowerCase()) warn('StageNameCasing', f, `Stage name '${f.stageName}' should be lowercase`, STAGE_NAME);
      const fromLower = f.keyword === f.keyword.toLowerCase();
      const fromUpper = f.keyword === f.keyword.toUpperCase();
      const asLower = f.asKeyword === f.asKeyword?.toLowerCase();
      const asUpper = f.asKeyword === f.asKeyword?.toUpperCase();
      if ((fromUpper && !asUpper) || (fromLower && !asLower)) {
        warn('FromAsCasing', f, `'${f.asKeyword}' and '${f.keyword}' keywords' casing do not match`, { kind: 'as-keyword' });
      }
      const lname = f.stageName.toLowerCase();
      if (stageNames.has(lname)) warn('DuplicateStageName', f, `Duplicate stage name "${f.stageName}", stage names should be unique`, STAGE_NAME);
      else stageNames.set(lname, s.index);
      if (lname === 'scratch' || lname === 'context') warn('ReservedStageName', f, `Stage name should not use the same name as reserved stage "${lname}"`, STAGE_NAME);
    }
    const fromVars = new Set<string>();
    const collect = (w: string | undefined): void => {
      if (w !== undefined) tryExpand(w, (n) => {
        fromVars.add(n);
        return undefined;
      }, escape);
    };
    collect(f.image);
    collect(f.platform);
    for (const n of fromVars) {
      if (!globalDecl.has(n) && !isPredefinedArg(n)) {
        const near = closest(n, [...globalDecl]);
        warn('UndefinedArgInFrom', f, `FROM argument '${n}' is not declared${near ? ` (did you mean ${near}?)` : ''}`, { kind: 'variable', name: n });
      }
    }
    const predefinedLookup = (n: string): string | undefined => ((PLATFORM_ARGS as readonly string[]).includes(n) ? 'linux/amd64' : undefined);
    const withDefaults = tryExpand(f.image, (n) => buildArgs[n] ?? globalDefaults[n] ?? predefinedLookup(n), escape);
    if (fromVars.size > 0 && [...fromVars].every((n) => globalDecl.has(n) || isPredefinedArg(n)) && (withDefaults === undefined || !validImageName(withDefaults))) {
      warn('InvalidDefaultArgInFrom', f, `Default value for ARG ${f.image} results in empty or invalid base image name`, IMAGE);
    }
    if (f.platform !== undefined) {
      const p = f.platform.trim();
      if (p === '$TARGETPLATFORM' || p === '${TARGETPLATFORM}') {
        warn('RedundantTargetPlatform', f, `Setting platform to predefined ${p} in FROM is redundant as this is the default behavior`, PLATFORM_FLAG);
      } else if (!p.includes('$')) {
        const name = (f.stageName ?? '').toLowerCase();
        const parts = p.toLowerCase().split('/');
        if (!parts.some((x) => x && name.includes(x))) {
          warn('FromPlatformFlagConstDisallowed', f, `FROM --platform flag should not use constant value "${f.platform}"`, PLATFORM_FLAG);
        }
      }
    }
    const stageRef = resolveStageRef(f.image, stages, s.index, stageNames);
    const imageRef = f.image.toLowerCase() === 'scratch' || stageRef !== undefined ? undefined : (tryExpand(f.image, (n) => globalVals[n] ?? predefinedLookup(n), escape) ?? f.image);
    if (imageRef !== undefined && imageRef !== '' && !imageRef.includes('@')) {
      const tag = tagOf(imageRef);
      warn('UnpinnedBaseImage', f, tag === undefined || tag === 'latest'
        ? `Base image '${imageRef}' uses ${tag === undefined ? 'no tag (implicitly :latest)' : ':latest'}; pin it to a version and a digest`
        : `Base image '${imageRef}' is not pinned by digest; use ${imageRef}@sha256:<digest> for reproducible builds`, IMAGE);
    }

    // Per-instruction rules.
    const seenOnce = new Map<string, number>();
    let absoluteWorkdir = false;
    let shellSet = false;
    for (const i of s.instructions) {
      switch (i.kind) {
        case 'CMD':
        case 'ENTRYPOINT':
          if (i.cmd.form === 'shell' && !shellSet) warn('JSONArgsRecommended', i, `JSON arguments recommended for ${i.kind} to prevent unintended behavior related to OS signals`, ARGUMENTS);
          break;
        case 'SHELL':
          shellSet = true;
          break;
        case 'MAINTAINER':
          warn('MaintainerDeprecated', i, 'Maintainer instruction is deprecated in favor of using label', KEYWORD);
          break;
        case 'WORKDIR':
          if (i.path.startsWith('/') || i.path.startsWith('$')) absoluteWorkdir = true;
          else if (!absoluteWorkdir) warn('WorkdirRelativePath', i, `Relative workdir "${i.path}" can have unexpected results if the base image changes`, ARGUMENTS);
          break;
        case 'ENV':
        case 'LABEL':
          if (i.legacy) warn('LegacyKeyValueFormat', i, `"${i.kind} key=value" should be used instead of legacy "${i.kind} key value" format`, ARGUMENTS);
          for (const p of i.pairs) {
            if (i.kind === 'ENV') checkArgEnvName('ENV', p.key, i);
            checkSecretValue(i.kind, p.key, p.value, i, p.value);
          }
          break;
        case 'ARG':
          for (const a of i.args) {
            checkArgEnvName('ARG', a.name, i);
            if (a.default !== undefined) checkSecretValue('ARG', a.name, a.default, i, a.default);
          }
          break;
        case 'EXPOSE':
          for (const p of i.ports) {
            if (p.includes(':')) warn('ExposeInvalidFormat', i, `EXPOSE instruction should not define an IP address or host-port mapping, found '${p}'`, { kind: 'argument', text: p });
            const slash = p.indexOf('/');
            if (slash >= 0) {
              const proto = p.slice(slash + 1);
              if (proto !== proto.toLowerCase()) warn('ExposeProtoCasing', i, `Defined protocol '${p}' in EXPOSE instruction should be lowercase`, { kind: 'argument', text: p });
            }
          }
          break;
        case 'ADD':
          for (const src of i.sources) {
            if (/^(?:https?:\/\/)/i.test(src) && i.checksum === undefined) {
              warn('AddRemoteWithoutChecksum', i, `ADD ${src} without --checksum: the download is not verified`, { kind: 'argument', text: src });
            }
          }
          checkIgnored(i);
          break;
        case 'COPY':
          if (i.from === undefined) checkIgnored(i);
          break;
        default:
          break;
      }
      if (i.kind === 'CMD' || i.kind === 'ENTRYPOINT' || i.kind === 'HEALTHCHECK') {
        const n = (seenOnce.get(i.kind) ?? 0) + 1;
        seenOnce.set(i.kind, n);
        if (n === 2) warn('MultipleInstructionsDisallowed', i, `Multiple ${i.kind} instructions should not be used in the same stage because only the last one will be used`, KEYWORD);
      }
    }

    // UndefinedVar: only where the starting environment is known.
    let baseEnv: string[] | undefined = opts.baseEnv?.(s.index);
    if (baseEnv === undefined) {
      if (f.image.toLowerCase() === 'scratch') baseEnv = [];
      else if (stageRef !== undefined) baseEnv = finalEnvKnown.get(stageRef);
    }
    if (baseEnv !== undefined) {
      const vars = new VarScope({
        globalArgs: globalVals,
        predefined: [...PLATFORM_ARGS].map((name) => ({ name, value: '', hidden: false })),
        buildArgs, baseEnv, escape, file,
      });
      for (const i of s.instructions) {
        const unset = new Set<string>();
        try {
          vars.advance(i, { onUnset: (n) => unset.add(n) });
        } catch {
          continue;
        }
        for (const n of unset) {
          // An ARG declared without a value counts as defined (BuildKit does the same).
          if (isPredefinedArg(n) || vars.isDeclared(n)) continue;
          const near = closest(n, vars.names());
          warn('UndefinedVar', i, `Usage of undefined variable '$${n}'${near ? ` (did you mean $${near}?)` : ''}`, { kind: 'variable', name: n });
        }
      }
      finalEnvKnown.set(s.index, vars.current().env);
    } else finalEnvKnown.set(s.index, undefined);
  }

  // NoUserInFinalStage: the last USER of the final stage, following stage bases back.
  if (stages.length > 0) {
    const last = stages[stages.length - 1]!;
    let s: Stage | undefined = last;
    let user: string | undefined;
    while (s && user === undefined) {
      for (const i of s.instructions) if (i.kind === 'USER') user = i.user;
      const ref = resolveStageRef(s.from.image, stages, s.index, stageNames);
      s = ref === undefined ? undefined : stages[ref];
    }
    if (user === undefined) {
      warn('NoUserInFinalStage', last.from,
        'The final stage sets no USER, so the container runs as root unless the base image says otherwise; add USER <non-root>', KEYWORD);
    } else if (/^(root|0)(:.*)?$/.test(user.trim())) {
      warn('NoUserInFinalStage', last.from, `The final stage runs as root (USER ${user}); switch to a non-root USER`, KEYWORD);
    }
  }

  function checkIgnored(i: Instruction): void {
    if (!opts.isIgnored || (i.kind !== 'COPY' && i.kind !== 'ADD')) return;
    for (const src of i.sources) {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(src) || src.startsWith('<<')) continue;
      const p = src.replace(/^\.?\/+/, '');
      if (p === '' || p === '.') continue;
      if (opts.isIgnored(p)) warn('CopyIgnoredFile', i, `Attempting to ${i.kind === 'COPY' ? 'Copy' : 'Add'} file "${src}" that is excluded by .dockerignore`, { kind: 'argument', text: src });
    }
  }

  return applyConfig(out, config);
}

const KEYWORD: TokenRef = { kind: 'keyword' };
const ARGUMENTS: TokenRef = { kind: 'arguments' };
const STAGE_NAME: TokenRef = { kind: 'stage-name' };
const IMAGE: TokenRef = { kind: 'image' };
const PLATFORM_FLAG: TokenRef = { kind: 'flag', name: 'platform' };

function applyConfig(warnings: BuildWarning[], config: CheckDirective): BuildWarning[] {
  if (config.skip === 'all') return [];
  const skip = new Set(config.skip.map((s) => s.toLowerCase()));
  return warnings
    .filter((w) => !skip.has(w.rule.toLowerCase()))
    .map((w) => (config.error ? { ...w, error: true } : w))
    .sort((a, b) => a.line - b.line);
}

function tryExpand(word: string, lookup: (n: string) => string | undefined, escape: '\\' | '`'): string | undefined {
  try {
    return processWord(word, lookup, { escape });
  } catch {
    return undefined;
  }
}

function resolveStageRef(image: string, stages: Stage[], before: number, names: Map<string, number>): number | undefined {
  const idx = names.get(image.toLowerCase());
  return idx !== undefined && idx < before ? idx : undefined;
}

// A loose reference check: what InvalidDefaultArgInFrom needs (empty, spaces, upper-case repository, stray ':').
function validImageName(ref: string): boolean {
  if (ref === '') return false;
  return /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?(?:@[a-z0-9]+:[a-f0-9]{32,})?$/i.test(ref)
    && !/[A-Z]/.test(ref.split(/[:@]/)[0]!.split('/').slice(-1)[0]!);
}

function tagOf(ref: string): string | undefined {
  const lastSlash = ref.lastIndexOf('/');
  const colon = ref.indexOf(':', lastSlash + 1);
  return colon < 0 ? undefined : ref.slice(colon + 1);
}
