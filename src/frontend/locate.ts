/**
 * dockerfile-ast as kiln's *locator*: it finds where a token sits in the
 * source (keyword, flag, stage name, variable, argument, ARG/ENV/LABEL key or
 * value, heredoc marker). It never decides what a Dockerfile means — kiln's
 * own scanner (syntax-tree.ts, parse.ts) does, because dockerfile-ast's
 * argument, JSON, heredoc and expansion semantics differ from BuildKit's.
 *
 * This is the only module that imports dockerfile-ast. Loading it costs
 * 40–60 ms and it parses several times slower than kiln's scanner (130–450 ms
 * against ~30 ms for the 8,000-line bench file), so nothing on the
 * `kiln build` path imports this file: `kiln check` loads it on demand, and a
 * failed parse may load it to add a column to the error.
 *
 * Each instruction is located by handing dockerfile-ast only the physical
 * lines kiln assigned to it. That keeps one of dockerfile-ast's multi-line
 * misreadings (a heredoc it does not recognise, `\\` at the end of a line)
 * from shifting every instruction after it.
 */
import {
  Arg, Copy, DockerfileParser, From, JSONInstruction, ModifiableInstruction, Onbuild, PropertyInstruction, Run,
  type Argument, type Flag, type Instruction as AstInstruction,
} from 'dockerfile-ast';
import { KilnError } from '../errors/index.js';
import type { Range } from './instructions.js';

import { DockerfileError, type TokenRef } from './dockerfile-error.js';

export type { TokenRef };

/** What the locator needs of a kiln instruction: the lines kiln gave it and its keyword as written. */
export interface InstructionSpan {
  range: Range;
  keyword: string;
}

export interface Locator {
  /** The token's range (1-based, end exclusive), or undefined when dockerfile-ast cannot place it. */
  locate(at: InstructionSpan, token: TokenRef): Range | undefined;
}

/** An instruction start as dockerfile-ast sees it (whole-document parse). */
export interface AstInstructionStart {
  line: number;
  column: number;
  keyword: string;
}

interface LspPosition {
  line: number;
  character: number;
}
interface LspRange {
  start: LspPosition;
  end: LspPosition;
}

/** A dockerfile-ast instruction parsed from a slice of the source, and how to map its positions back. */
interface Located {
  ins: AstInstruction;
  /** 0-based source line of the slice's line 0. */
  offset: number;
}

class Source {
  readonly lines: string[];
  private escape: string | undefined;

  constructor(text: string) {
    // kiln drops a UTF-8 BOM before scanning and editors do not show it; dockerfile-ast
    // would count it as a character and shift every column of line 1.
    this.lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split('\n');
  }

  /** The escape character, read by dockerfile-ast from the directive lines at the top. */
  private escapeChar(): string {
    if (this.escape === undefined) {
      let n = 0;
      while (n < this.lines.length && /^\s*(#|\r?$)/.test(this.lines[n]!)) n++;
      this.escape = n === 0 ? '\\' : DockerfileParser.parse(this.lines.slice(0, n).join('\n')).getEscapeCharacter();
    }
    return this.escape;
  }

  /**
   * Parses lines `start..end` (1-based, inclusive; to the end of the file when
   * `end` is undefined) and returns the instruction dockerfile-ast finds on
   * the first of them, provided its keyword is `keyword` (when given).
   */
  instructionAt(start: number, end: number | undefined, keyword: string | undefined): Located | undefined {
    if (start < 1 || start > this.lines.length) return undefined;
    // A slice has no directive lines of its own: restate a non-default escape.
    const prefix = this.escapeChar() === '`' ? '# escape=`\n' : '';
    const shift = prefix === '' ? 0 : 1;
    const slice = this.lines.slice(start - 1, end ?? this.lines.length).join('\n');
    const ins = DockerfileParser.parse(prefix + slice).getInstructions()[0];
    if (ins === undefined || ins.getInstructionRange().start.line !== shift) return undefined;
    if (keyword !== undefined && ins.getInstruction() !== keyword) return undefined;
    return { ins, offset: start - 1 - shift };
  }

  toRange(r: LspRange, offset: number): Range {
    return {
      start: { line: r.start.line + offset + 1, column: r.start.character + 1 },
      end: { line: r.end.line + offset + 1, column: r.end.character + 1 },
    };
  }

  /** The source text a slice range covers. */
  textOf(r: LspRange, offset: number): string {
    const a = r.start.line + offset;
    const b = r.end.line + offset;
    if (a === b) return (this.lines[a] ?? '').slice(r.start.character, r.end.character);
    const parts = [(this.lines[a] ?? '').slice(r.start.character)];
    for (let l = a + 1; l < b; l++) parts.push(this.lines[l] ?? '');
    parts.push((this.lines[b] ?? '').slice(0, r.end.character));
    return parts.join('\n');
  }

  find(at: Located, token: TokenRef): LspRange | undefined {
    const { ins } = at;
    // Flags, arguments and the rest of an ONBUILD line belong to its trigger.
    if (ins instanceof Onbuild && token.kind !== 'keyword' && token.kind !== 'trigger') {
      const trigger = ins.getTriggerInstruction();
      return trigger === null ? undefined : this.find({ ins: trigger, offset: at.offset }, token);
    }
    switch (token.kind) {
      case 'keyword':
        return ins.getInstructionRange();
      case 'arguments': {
        const args = ins.getArguments();
        if (args.length === 0) return undefined;
        return { start: args[0]!.getRange().start, end: args[args.length - 1]!.getRange().end };
      }
      case 'argument':
        return this.findArgument(at, token.text);
      case 'flag': {
        const fs = flagsOf(ins).filter((f) => f.getName() === token.name);
        return (token.last ? fs[fs.length - 1] : fs[0])?.getRange();
      }
      case 'flag-value': {
        const fs = flagsOf(ins).filter((f) => f.getName() === token.name);
        const want = token.value === undefined ? undefined : unquote(token.value);
        const f = want === undefined ? fs[0] : fs.find((x) => unquote(x.getValue() ?? '') === want) ?? fs[0];
        return f === undefined ? undefined : f.getValueRange() ?? f.getRange();
      }
      case 'variable':
        return ins.getVariables().find((v) => v.getName() === token.name)?.getRange();
      case 'stage-name':
        return ins instanceof From ? ins.getBuildStageRange() ?? undefined : undefined;
      case 'as-keyword': {
        if (!(ins instanceof From)) return undefined;
        const args = ins.getArguments();
        return args.length >= 3 && args[1]!.getValue().toLowerCase() === 'as' ? args[1]!.getRange() : undefined;
      }
      case 'image':
        return ins instanceof From ? ins.getImageRange() ?? undefined : undefined;
      case 'key':
      case 'value':
        return this.findKeyOrValue(at, token);
      case 'trigger':
        return ins instanceof Onbuild ? ins.getTriggerRange() ?? undefined : undefined;
      case 'heredoc': {
        const docs = ins instanceof Run || ins instanceof Copy ? ins.getHeredocs() : [];
        return docs.find((h) => unquote(h.getName()) === token.name)?.getStartRange();
      }
      case 'directive-name':
        // directives are not instructions: locateError places them itself
        return undefined;
    }
  }

  private findArgument(at: Located, text: string): LspRange | undefined {
    for (const a of at.ins.getArguments()) {
      if (a.getValue() === text || this.textOf(a.getRange(), at.offset) === text) return a.getRange();
    }
    // dockerfile-ast's decoded JSON strings are not JSON's (`"a b"` becomes `ab`); decode the source instead.
    if (at.ins instanceof JSONInstruction) {
      for (const s of at.ins.getJSONStrings()) {
        try {
          if (JSON.parse(this.textOf(s.getRange(), at.offset)) === text) return s.getRange();
        } catch {
          // not a complete JSON string: not this one
        }
      }
    }
    return undefined;
  }

  private findKeyOrValue(at: Located, token: { kind: 'key'; name: string } | { kind: 'value'; key: string; text?: string }): LspRange | undefined {
    const name = token.kind === 'key' ? token.name : token.key;
    const { ins, offset } = at;
    // dockerfile-ast reads `ARG A B=1` as one variable A with the value `B=1`, so ARG
    // keys and values come from its argument words instead of its properties.
    if (ins instanceof PropertyInstruction && !(ins instanceof Arg)) {
      const p = ins.getProperties().find((x) => x.getName() === name || this.textOf(x.getNameRange(), offset) === name);
      if (p === undefined) return undefined;
      return token.kind === 'key' ? p.getNameRange() : p.getValueRange() ?? undefined;
    }
    const a: Argument | undefined = ins.getArguments().find((x) => x.getValue() === name || x.getValue().startsWith(`${name}=`));
    if (a === undefined) return undefined;
    const r = a.getRange();
    const at0 = r.start;
    if (token.kind === 'key') {
      const key = { start: at0, end: { line: at0.line, character: at0.character + name.length } };
      return this.textOf(key, offset) === name ? key : r;
    }
    if (a.getValue() === name) return undefined;
    const start = { line: at0.line, character: at0.character + name.length + 1 };
    if (token.text !== undefined) {
      const end = { line: start.line, character: start.character + token.text.length };
      if (this.textOf({ start, end }, offset) === token.text) return { start, end };
    }
    return { start, end: r.end };
  }
}

function flagsOf(ins: AstInstruction): Flag[] {
  return ins instanceof ModifiableInstruction ? ins.getFlags() : [];
}

function unquote(s: string): string {
  return s.replace(/["']/g, '');
}

/** A locator over `text`, the Dockerfile kiln parsed. Parses lazily, one instruction at a time, and remembers. */
export function createLocator(text: string): Locator {
  const src = new Source(text);
  const cache = new Map<number, Located | null>();
  return {
    locate(at, token) {
      const line = at.range.start.line;
      let located = cache.get(line);
      if (located === undefined) {
        located = src.instructionAt(line, at.range.end.line, at.keyword) ?? null;
        cache.set(line, located);
      }
      if (located === null) return undefined;
      const r = src.find(located, token);
      return r === undefined ? undefined : src.toRange(r, located.offset);
    },
  };
}

/** Instruction starts of a whole-document dockerfile-ast parse (the consistency test compares them with kiln's). */
export function astInstructionStarts(text: string): AstInstructionStart[] {
  const src = new Source(text);
  return DockerfileParser.parse(src.lines.join('\n')).getInstructions().map((i) => {
    const r = i.getInstructionRange();
    return { line: r.start.line + 1, column: r.start.character + 1, keyword: i.getInstruction() };
  });
}

/**
 * Adds `location.column` to a Dockerfile parse or plan error when
 * dockerfile-ast can place the token the error named where it was raised
 * (DockerfileError.token: the unknown keyword, the bad flag, the stage name,
 * …), else the instruction's keyword; a directive error points at the
 * directive's value, or its name. Changes the error in place, so its stack
 * and identity survive; returns whether a column was added.
 */
export function locateError(error: unknown, text: string): boolean {
  if (!(error instanceof KilnError) || error.location === undefined || error.location.column !== undefined) return false;
  if (error.code !== 'DOCKERFILE_PARSE' && error.code !== 'DOCKERFILE_PLAN' && error.code !== 'EXPANSION') return false;
  const loc = error.location;
  const token = error instanceof DockerfileError ? error.token : undefined;
  const src = new Source(text);
  let located = src.instructionAt(loc.line, undefined, undefined);
  // kiln reports a trigger's own errors (unknown keyword, bad flag, …) on the ONBUILD line;
  // only an error about the trigger's place (`ONBUILD ONBUILD`, `ONBUILD FROM`) is about ONBUILD itself.
  if (located !== undefined && located.ins instanceof Onbuild && token?.kind !== 'trigger') {
    const trigger = located.ins.getTriggerInstruction();
    if (trigger !== null) located = { ins: trigger, offset: located.offset };
  }
  if (located === undefined) {
    const d = DockerfileParser.parse(src.lines.slice(0, loc.line).join('\n')).getDirectives()
      .find((x) => x.getRange().start.line === loc.line - 1);
    if (d === undefined) return false;
    loc.column = (token?.kind === 'directive-name' ? d.getNameRange() : d.getValueRange()).start.character + 1;
    return true;
  }
  const r = (token ? src.find(located, token) : undefined) ?? located.ins.getInstructionRange();
  loc.column = src.toRange(r, located.offset).start.column;
  return true;
}
