/**
 * ARG/ENV scoping while walking one stage, so the solver, the planner and the
 * checks agree on what each instruction sees.
 *
 * Rules (Docker's): a stage starts with the base image's ENV and no ARGs (a stage
 * built FROM another stage starts with that stage's ARGs, as BuildKit inherits
 * them; they still never reach the image's Env); global
 * ARGs and predefined args become visible only when redeclared with `ARG NAME`
 * (taking the global value unless a default or a `--build-arg` says otherwise:
 * build arg > default > global value); between an ENV and an ARG of the same name
 * the later one wins for expansion and RUN's environment (BuildKit's dispatchArg
 * sets the ARG in the build state's environment; the image's Env keeps the ENV
 * value), so `ENV X=a` then `ARG X=b` shows `b`, `ARG X=b` then `ENV X=a` shows
 * `a`, and an ARG without a value changes nothing; proxy build args reach RUN's environment without being declared, in both
 * spellings (http_proxy and HTTP_PROXY, as BuildKit's proxy env does), but are
 * never visible to expansion, history or cache keys unless declared. A default
 * is expanded only when no build arg sets the ARG (BuildKit never evaluates it
 * then, so `${X:?}` in an overridden default is no error).
 */
import { KilnError } from '../errors/index.js';
import { expandInstruction, type ExpandOptions } from './expand.js';
import type { Instruction } from './instructions.js';

/** The variables one step can see. */
export interface StepVars {
  /** Lookup for `expandInstruction`: ENV (base image + stage) over ARGs in scope. */
  lookup: (name: string) => string | undefined;
  /**
   * ARGs in scope with their values (declared ones, including predefined ones the
   * stage redeclared). The solver adds these to RUN's environment and uses them
   * in cache keys and history (`|N K=V … /bin/sh -c …`). A declared proxy arg is
   * not hidden (Docker's documented way to put it in history and cache keys).
   */
  args: Array<{ name: string; value: string; hidden: boolean; overridesEnv?: boolean }>;
  /** Proxy args given as build args but not declared: RUN gets them in its env, nothing else sees them. */
  hiddenEnv: Record<string, string>;
  /**
   * What a RUN's history line lists (`RUN |N K=V …`), as BuildKit's runCommandString does: every ARG
   * declared in the stage (inherited ones first), in the order first declared, those without a value
   * too, each with its value in the build state's environment (an ENV of the name set after it wins),
   * else its own, else empty.
   */
  historyArgs: Array<{ name: string; value: string }>;
  /** The effective environment list (`K=V`), ENV only — what the image config's Env becomes. */
  env: string[];
}

export interface VarScopeInit {
  /** Global ARG values (after build args) and predefined args; `PlanStage.globalArgs` plus `BuildPlan.predefinedArgs`. */
  globalArgs: Record<string, string>;
  /** Predefined args: platform family and, when given as build args, the proxy family (hidden). */
  predefined: Array<{ name: string; value: string; hidden: boolean }>;
  buildArgs: Record<string, string>;
  /** Base image `Env` (`K=V` strings); empty for scratch or when unknown. */
  baseEnv?: string[];
  /** ARGs in scope at the end of the parent stage, when the stage is built FROM another stage. */
  inheritedArgs?: DeclaredArg[];
  /** The base's Labels: with `baseEnv`, they count toward MAX_STAGE_VAR_BYTES. */
  baseLabels?: Readonly<Record<string, string>>;
  escape?: '\\' | '`';
  file?: string;
}

/**
 * Most characters ENV, LABEL and ARG may hold in one stage, counted as they are
 * declared (overwrites included: every declaration also lands in the image's
 * history). Each word is capped by MAX_EXPANDED_WORD; this bounds how many of
 * them a stage can pile into its config.
 */
export const MAX_STAGE_VAR_BYTES = 16 * 1024 * 1024;

/** An ARG in scope; `value` undefined = declared without a value. */
export interface DeclaredArg {
  name: string;
  value: string | undefined;
}

/** Lower-case proxy arg → its other spelling, both ways. */
const PROXY_PAIRS = new Map<string, string>(
  ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'].flatMap((l) => [[l, l.toUpperCase()], [l.toUpperCase(), l]] as Array<[string, string]>),
);

export class VarScope {
  private declaredBytes = 0;
  private readonly env = new Map<string, string>();
  /** Every ENV change with the version it happened at, per name, so a step's view is a version number, not a copy. */
  private readonly envLog = new Map<string, Array<{ version: number; value: string }>>();
  private version = 0;
  /** Declared ARGs in order; undefined value = declared but unset. */
  private readonly args = new Map<string, string | undefined>();
  /** The history line of the last ARG instruction (`ARG K=V K2`), each name with the value its declaration gave it. */
  argHistory: string | undefined;
  /** The version each ARG with a value was declared at: against an ENV of the same name, the later one wins. */
  private readonly argVersion = new Map<string, number>();
  private readonly init: VarScopeInit;

  constructor(init: VarScopeInit) {
    this.init = init;
    // what the stage inherits counts too: a chain of FROM <stage> stages, each within the bound on its
    // own, once grew one config to 470 MB and 4 GB of memory
    this.declaredBytes = 0;
    for (const [k, v] of Object.entries(init.baseLabels ?? {})) this.declaredBytes += k.length + v.length;
    for (const kv of init.baseEnv ?? []) {
      this.declaredBytes += kv.length;
      const eq = kv.indexOf('=');
      if (eq < 0) this.setEnv(kv, '');
      else this.setEnv(kv.slice(0, eq), kv.slice(eq + 1));
    }
    for (const a of init.inheritedArgs ?? []) this.args.set(a.name, a.value);
  }

  /** The ARGs in scope now, in declaration order (what a stage built FROM this one inherits). */
  declared(): DeclaredArg[] {
    return [...this.args].map(([name, value]) => ({ name, value }));
  }

  /** Variable lookup as expansion sees it now: of an ENV and a declared ARG, the one set last. */
  readonly lookup = (name: string): string | undefined => {
    const arg = this.args.get(name);
    if (arg !== undefined && (this.argVersion.get(name) ?? 0) > (this.envLog.get(name)?.at(-1)?.version ?? -1)) return arg;
    return this.env.get(name) ?? arg;
  };

  /** Declared with ARG in this stage (even without a value). */
  isDeclared(name: string): boolean {
    return this.args.has(name);
  }

  /**
   * What the next instruction can see. O(ARGs in scope) per call, independent
   * of the number of ENV variables: `env` and ENV lookups read a versioned log
   * instead of copying the environment, so a Dockerfile of N ENV lines costs
   * O(N log N) rather than O(N²).
   */
  current(): StepVars {
    const args: StepVars['args'] = [];
    for (const [name, value] of this.args) {
      if (value === undefined) continue;
      const envVersion = this.envLog.get(name)?.at(-1)?.version;
      const overrides = envVersion !== undefined && (this.argVersion.get(name) ?? 0) > envVersion;
      args.push({ name, value, hidden: false, ...(overrides ? { overridesEnv: true } : {}) });
    }
    const hiddenEnv: Record<string, string> = {};
    for (const p of this.init.predefined) if (p.hidden && !this.args.has(p.name)) hiddenEnv[p.name] = p.value;
    // the other spelling, unless given or declared itself
    for (const p of this.init.predefined) {
      const twin = p.hidden ? PROXY_PAIRS.get(p.name) : undefined;
      if (twin !== undefined && !(twin in hiddenEnv) && !this.args.has(twin) && !this.init.predefined.some((q) => q.name === twin)) hiddenEnv[twin] = p.value;
    }
    const at = this.version;
    let argMap: Map<string, StepVars['args'][number]> | undefined;
    let env: string[] | undefined;
    const envList = (): string[] => (env ??= this.envListAt(at));
    const lookup = (name: string): string | undefined => {
      argMap ??= new Map(args.map((a) => [a.name, a]));
      const a = argMap.get(name);
      if (a?.overridesEnv) return a.value;
      return this.envAt(name, at) ?? a?.value;
    };
    const names = [...this.args.keys()];
    let historyArgs: StepVars['historyArgs'] | undefined;
    return {
      // only a RUN's history line reads it: made on first access, not for every step
      get historyArgs() {
        return (historyArgs ??= names.map((name) => ({ name, value: lookup(name) ?? '' })));
      },
      lookup,
      args,
      hiddenEnv,
      get env() {
        return envList();
      },
    };
  }

  /** Value of ENV `name` as it was at `version`. */
  private envAt(name: string, version: number): string | undefined {
    const log = this.envLog.get(name);
    if (!log) return undefined;
    // binary search for the last change at or before `version`
    let lo = 0;
    let hi = log.length - 1;
    let found: string | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const entry = log[mid]!;
      if (entry.version <= version) {
        found = entry.value;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** The `K=V` list at `version`, in first-set order (as Docker keeps Env). */
  private envListAt(version: number): string[] {
    const out: string[] = [];
    for (const name of this.envLog.keys()) {
      const v = this.envAt(name, version);
      if (v !== undefined) out.push(`${name}=${v}`);
    }
    return out;
  }

  private setEnv(name: string, value: string): void {
    this.version++;
    this.env.set(name, value);
    let log = this.envLog.get(name);
    if (!log) this.envLog.set(name, (log = []));
    log.push({ version: this.version, value });
  }

  /**
   * Expands `instr` with the variables visible before it, then applies its
   * effect on scope (ARG declares, ENV sets). Returns the expanded instruction
   * and the variables it saw.
   */
  next(instr: Instruction, opts: Pick<ExpandOptions, 'onUnset'> = {}): { instruction: Instruction; vars: StepVars } {
    const vars = this.current();
    return { instruction: this.advance(instr, opts), vars };
  }

  /** `next()` without the snapshot of what the instruction saw (cheaper, for walks that only need the result). */
  advance(instr: Instruction, opts: Pick<ExpandOptions, 'onUnset'> = {}): Instruction {
    const eo: ExpandOptions = {
      ...(this.init.escape ? { escape: this.init.escape } : {}),
      ...(this.init.file ? { file: this.init.file } : {}),
      ...opts,
    };
    if (instr.kind === 'ARG') {
      const committed: string[] = [];
      // Each declaration sees the ones before it on the same line.
      const args = instr.args.map((decl) => {
        const overridden = Object.hasOwn(this.init.buildArgs, decl.name);
        const expanded = decl.default === undefined || overridden ? decl : (expandInstruction({ ...instr, args: [decl] }, this.lookup, eo) as typeof instr).args[0]!;
        this.count(instr, decl.name.length + (expanded.default?.length ?? 0));
        const own = this.declare(decl.name, expanded.default);
        committed.push(own === undefined ? decl.name : `${decl.name}=${own}`);
        return expanded;
      });
      this.argHistory = `ARG ${committed.join(' ')}`;
      return { ...instr, args };
    }
    const instruction = expandInstruction(instr, this.lookup, eo);
    if (instruction.kind === 'ENV' || instruction.kind === 'LABEL') {
      for (const p of instruction.pairs) this.count(instruction, p.key.length + p.value.length);
    }
    if (instruction.kind === 'ENV') {
      for (const p of instruction.pairs) this.setEnv(p.key, p.value);
    }
    return instruction;
  }

  private count(instr: Instruction, n: number): void {
    this.declaredBytes += n;
    if (this.declaredBytes > MAX_STAGE_VAR_BYTES) {
      throw new KilnError('EXPANSION', `${instr.kind}: the stage's ENV, LABEL and ARG values (with those it inherits) exceed the limit of ${MAX_STAGE_VAR_BYTES} characters`, {
        location: { file: this.init.file ?? 'Dockerfile', line: instr.range.start.line },
      });
    }
  }

  /** Names currently visible (ENV and declared ARGs), e.g. for "did you mean" hints. */
  names(): string[] {
    return [...new Set([...this.env.keys(), ...this.args.keys()])];
  }

  /** The value an ARG declaration takes: build arg > (expanded) default > global value > predefined value. */
  private declare(name: string, expandedDefault: string | undefined): string | undefined {
    const fromBuild = Object.hasOwn(this.init.buildArgs, name) ? this.init.buildArgs[name] : undefined;
    let value: string | undefined;
    if (fromBuild !== undefined) value = fromBuild;
    else if (expandedDefault !== undefined) value = expandedDefault;
    else if (Object.hasOwn(this.init.globalArgs, name)) value = this.init.globalArgs[name];
    else value = this.init.predefined.find((p) => p.name === name)?.value;
    const own = value;
    // a value goes into the build state's environment over an ENV set before
    if (value !== undefined) this.argVersion.set(name, ++this.version);
    // Declared again without a value: the value it had stays (BuildKit keeps it in the build state's
    // environment), and so does its place against the ENVs
    else value = this.args.get(name);
    // a re-declared ARG keeps its first place, where BuildKit's history lists it
    this.args.set(name, value);
    return own;
  }
}
