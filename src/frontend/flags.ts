/** Instruction flags (`--name=value`), validated like BuildKit's BFlags. */
import { DockerfileError, type TokenRef } from './dockerfile-error.js';
import { closest } from './suggest.js';

export type FlagType = 'string' | 'bool' | 'strings';
export type FlagSpec = Record<string, FlagType>;
export interface FlagValues {
  strings: Map<string, string>;
  bools: Map<string, boolean>;
  lists: Map<string, string[]>;
}

const NO_FLAGS: FlagValues = { strings: new Map(), bools: new Map(), lists: new Map() };

export function parseFlags(flags: string[], spec: FlagSpec, keyword: string, file: string, line: number): FlagValues {
  // Most instructions have no flags; share one (never mutated) empty result.
  if (flags.length === 0) return NO_FLAGS;
  const out: FlagValues = { strings: new Map(), bools: new Map(), lists: new Map() };
  const err = (message: string, hint?: string, token?: TokenRef): DockerfileError =>
    new DockerfileError('DOCKERFILE_PARSE', message, { location: { file, line }, ...(hint ? { hint } : {}), ...(token ? { token } : {}) });
  const used = new Set<string>();
  for (const arg of flags) {
    if (!arg.startsWith('--')) throw err(`flag should start with -- : ${arg}`);
    if (arg === '--') break;
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const hasValue = eq >= 0;
    const value = hasValue ? arg.slice(eq + 1) : '';
    const type = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (!type) {
      const names = Object.keys(spec);
      const near = closest(name, names);
      const hint = near ? `did you mean --${near}?` : names.length ? `${keyword} accepts ${names.map((n) => '--' + n).join(', ')}` : `${keyword} takes no flags`;
      throw err(`unknown flag: --${name} for ${keyword}`, hint, { kind: 'flag', name });
    }
    if (used.has(name) && type !== 'strings') throw err(`duplicate flag specified: --${name}`, undefined, { kind: 'flag', name, last: true });
    used.add(name);
    if (type === 'bool') {
      if (hasValue && value === '') throw err(`missing a value on flag: --${name}`, undefined, { kind: 'flag', name });
      const v = value.toLowerCase();
      if (v === 'true' || v === '') out.bools.set(name, true);
      else if (v === 'false') out.bools.set(name, false);
      else throw err(`expecting boolean value for flag --${name}, not: ${value}`, undefined, { kind: 'flag', name });
    } else if (!hasValue) {
      throw err(`missing a value on flag: --${name}`, `write --${name}=<value>`, { kind: 'flag', name });
    } else if (type === 'string') {
      out.strings.set(name, value);
    } else {
      const l = out.lists.get(name) ?? [];
      l.push(value);
      out.lists.set(name, l);
    }
  }
  return out;
}
