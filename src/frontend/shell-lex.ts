/**
 * Docker's shell-word expansion: a port of BuildKit's `frontend/dockerfile/shell`
 * lexer (quotes, escapes, `$V`, `${V}` and its modifiers). It is what ENV, COPY,
 * WORKDIR, … go through; RUN's shell form never does (the real shell expands it).
 */
import { KilnError } from '../errors/index.js';

/** Variable lookup: a function (undefined = unset) or a Map. */
export type VarLookup = ((name: string) => string | undefined) | ReadonlyMap<string, string>;

export interface ProcessOptions {
  /** Escape character; `\` unless the Dockerfile says `# escape=``. */
  escape?: '\\' | '`';
  /** Keep quote characters in the result (BuildKit's RawQuotes). */
  rawQuotes?: boolean;
  /** Keep escape characters in the result (BuildKit's RawEscapes). */
  rawEscapes?: boolean;
  /** Leave `$NAME` of unset variables as written (BuildKit's SkipUnsetEnv). */
  skipUnset?: boolean;
  /** Don't treat quotes specially at all (BuildKit's SkipProcessQuotes). */
  skipQuotes?: boolean;
  /** Called with every variable name that was referenced but unset (the UndefinedVar check). */
  onUnset?: (name: string) => void;
}

const EOF = -1;

/**
 * Longest word expansion may produce (UTF-16 code units, about bytes for
 * ASCII). Without it, 40 lines of `ENV A=$A$A` ask for 2^40 characters and
 * V8 dies out of memory; with it the build stops with a located error.
 */
export const MAX_EXPANDED_WORD = 1024 * 1024;

function checkSize(s: string): string {
  if (s.length > MAX_EXPANDED_WORD) fail(`expanded word is ${s.length} characters, longer than the limit of ${MAX_EXPANDED_WORD}`);
  return s;
}

export function toLookup(env: VarLookup): (name: string) => string | undefined {
  if (typeof env === 'function') return env;
  return (name) => env.get(name);
}

/** Expands one word: quotes and escapes removed, no word splitting. Throws KilnError('EXPANSION'). */
export function processWord(word: string, env: VarLookup, opts: ProcessOptions = {}): string {
  return new ShellWord(word, env, opts).process().result;
}

/** Expands then splits on unquoted whitespace (including whitespace that came from an unquoted expansion). */
export function processWords(word: string, env: VarLookup, opts: ProcessOptions = {}): string[] {
  return new ShellWord(word, env, opts).process().words;
}

/** Go's unicode.IsSpace, which BuildKit's parser and lexer split words on. */
export function isGoSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d) || c === 0x85 || c === 0xa0 || c === 0x1680 ||
    (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000;
}

const LETTER = /\p{L}/u;
const DIGIT = /\p{Nd}/u;
function isLetter(c: number): boolean {
  if (c < 0x80) return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  return LETTER.test(String.fromCodePoint(c));
}
function isDigit(c: number): boolean {
  if (c < 0x80) return c >= 0x30 && c <= 0x39;
  return DIGIT.test(String.fromCodePoint(c));
}
function isSpecialParam(c: number): boolean {
  // @ * # ? - $ ! 0
  return c === 0x40 || c === 0x2a || c === 0x23 || c === 0x3f || c === 0x2d || c === 0x24 || c === 0x21 || c === 0x30;
}

class Words {
  word = '';
  words: string[] = [];
  inWord = false;
  addChar(ch: string, code: number): void {
    if (isGoSpace(code)) {
      if (this.inWord && this.word.length !== 0) {
        this.words.push(this.word);
        this.word = '';
        this.inWord = false;
      }
    } else {
      this.addRawChar(ch);
    }
  }
  addRawChar(ch: string): void {
    this.word += ch;
    this.inWord = true;
  }
  addString(s: string): void {
    // runs between spaces are appended whole: a character at a time, a 1 MiB value
    // became a million-node rope and most of the build's time went to GC
    let start = 0;
    for (let i = 0; i < s.length; ) {
      const code = s.codePointAt(i)!;
      const width = code > 0xffff ? 2 : 1;
      if (isGoSpace(code)) {
        if (i > start) this.addRawString(s.slice(start, i));
        this.addChar(s.slice(i, i + width), code);
        start = i + width;
      }
      i += width;
    }
    if (start < s.length) this.addRawString(s.slice(start));
  }
  addRawString(s: string): void {
    this.word += s;
    this.inWord = true;
  }
  getWords(): string[] {
    if (this.word.length > 0) {
      this.words.push(this.word);
      this.word = '';
      this.inWord = false;
    }
    return this.words;
  }
}

function fail(message: string): never {
  throw new KilnError('EXPANSION', message);
}

class ShellWord {
  private readonly chars: number[];
  private pos = 0;
  private readonly lookup: (name: string) => string | undefined;
  private readonly escape: number;
  private rawEscapes = false;

  constructor(word: string, env: VarLookup, private readonly opts: ProcessOptions) {
    this.chars = [];
    for (const ch of word) this.chars.push(ch.codePointAt(0)!);
    this.lookup = toLookup(env);
    this.escape = (opts.escape ?? '\\').charCodeAt(0);
    this.rawEscapes = opts.rawEscapes ?? false;
  }

  private peek(): number {
    return this.pos < this.chars.length ? this.chars[this.pos]! : EOF;
  }
  private next(): number {
    return this.pos < this.chars.length ? this.chars[this.pos++]! : EOF;
  }

  process(): { result: string; words: string[] } {
    const { result, words } = this.processStopOn(EOF, false);
    return { result, words };
  }

  private getEnv(name: string): string | undefined {
    const v = this.lookup(name);
    if (v === undefined) this.opts.onUnset?.(name);
    return v;
  }

  /** processStopOn inside `${…}`: an error there at the end of input is the unclosed brace (or slash) itself. */
  private processUntil(stop: number, rawEscapes: boolean, missing: string): string {
    try {
      return this.processStopOn(stop, rawEscapes).result;
    } catch (e) {
      if (this.peek() === EOF) fail(missing);
      throw e;
    }
  }

  private processStopOn(stop: number, rawEscapes: boolean): { result: string; words: string[] } {
    const savedRaw = this.rawEscapes;
    this.rawEscapes = rawEscapes || savedRaw;
    try {
      let result = '';
      const words = new Words();
      const quotes = !this.opts.skipQuotes;
      while (this.peek() !== EOF) {
        const c = this.peek();
        if (stop !== EOF && c === stop) {
          this.next();
          return { result, words: words.getWords() };
        }
        if (c === 0x24 /* $ */) {
          const tmp = this.processDollar();
          result = checkSize(result + tmp);
          words.addString(tmp);
        } else if (quotes && c === 0x27 /* ' */) {
          const tmp = this.processSingleQuote();
          result += tmp;
          words.addRawString(tmp);
        } else if (quotes && c === 0x22 /* " */) {
          const tmp = this.processDoubleQuote();
          result = checkSize(result + tmp);
          words.addRawString(tmp);
        } else {
          let ch = this.next();
          if (ch === this.escape) {
            if (this.rawEscapes) {
              const s = String.fromCodePoint(ch);
              words.addRawChar(s);
              result += s;
            }
            ch = this.next();
            if (ch === EOF) break;
            words.addRawChar(String.fromCodePoint(ch));
          } else {
            words.addChar(String.fromCodePoint(ch), ch);
          }
          result += String.fromCodePoint(ch);
        }
      }
      if (stop !== EOF) fail(`unexpected end of statement while looking for matching ${String.fromCodePoint(stop)}`);
      return { result, words: words.getWords() };
    } finally {
      this.rawEscapes = savedRaw;
    }
  }

  private processSingleQuote(): string {
    let result = '';
    let ch = this.next();
    if (this.opts.rawQuotes) result += String.fromCodePoint(ch);
    for (;;) {
      ch = this.next();
      if (ch === EOF) fail('unexpected end of statement while looking for matching single-quote');
      if (ch === 0x27) {
        if (this.opts.rawQuotes) result += "'";
        return result;
      }
      result += String.fromCodePoint(ch);
    }
  }

  private processDoubleQuote(): string {
    let result = '';
    let ch = this.next();
    if (this.opts.rawQuotes) result += String.fromCodePoint(ch);
    for (;;) {
      const p = this.peek();
      if (p === EOF) fail('unexpected end of statement while looking for matching double-quote');
      if (p === 0x22) {
        this.next();
        if (this.opts.rawQuotes) result += '"';
        return result;
      }
      if (p === 0x24) {
        result = checkSize(result + this.processDollar());
        continue;
      }
      ch = this.next();
      if (ch === this.escape) {
        if (this.rawEscapes) result += String.fromCodePoint(ch);
        const q = this.peek();
        if (q === EOF) continue;
        if (q === 0x22 || q === 0x24 || q === this.escape) ch = this.next();
      }
      result += String.fromCodePoint(ch);
    }
  }

  private processName(): string {
    let name = '';
    while (this.peek() !== EOF) {
      const c = this.peek();
      if (name.length === 0 && isDigit(c)) {
        while (this.peek() !== EOF && isDigit(this.peek())) name += String.fromCodePoint(this.next());
        return name;
      }
      if (name.length === 0 && isSpecialParam(c)) {
        return String.fromCodePoint(this.next());
      }
      if (!isLetter(c) && !isDigit(c) && c !== 0x5f) break;
      name += String.fromCodePoint(this.next());
    }
    return name;
  }

  private processDollar(): string {
    this.next();
    if (this.peek() !== 0x7b /* { */) {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnset) return '$' + name;
      return value ?? '';
    }
    this.next();
    const p = this.peek();
    if (p === EOF) fail("syntax error: missing '}'");
    if (p === 0x7b || p === 0x7d || p === 0x3a) fail('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    let chs = ch === EOF ? '' : String.fromCodePoint(ch);
    let nullIsUnset = false;
    if (ch === 0x7d /* } */) {
      const value = this.getEnv(name);
      if (value === undefined && this.opts.skipUnset) return `\${${name}}`;
      return value ?? '';
    }
    if (ch === 0x3a /* : */) {
      nullIsUnset = true;
      ch = this.next();
      chs += ch === EOF ? '' : String.fromCodePoint(ch);
    }
    if (nullIsUnset || ch === 0x2b || ch === 0x2d || ch === 0x3f || ch === 0x23 || ch === 0x25) {
      const raw = ch === 0x23 || ch === 0x25;
      if (nullIsUnset && raw) fail(`unsupported modifier (${chs}) in substitution`);
      let word = this.processUntil(0x7d, raw, "syntax error: missing '}'");
      const value = this.getEnv(name);
      if (this.opts.skipUnset && value === undefined) return `\${${name}${chs}${word}}`;
      const set = value !== undefined;
      switch (ch) {
        case 0x2d: // -
          return !set || (nullIsUnset && value === '') ? word : value;
        case 0x2b: // +
          return !set || (nullIsUnset && value === '') ? '' : word;
        case 0x3f: // ?
          if (!set) fail(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
          if (nullIsUnset && value === '') fail(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
          return value;
        case 0x25: // %
        case 0x23: { // #
          let greedy = false;
          if (word.length > 0 && word.codePointAt(0) === ch) {
            greedy = true;
            word = word.slice(1);
          }
          return ch === 0x25 ? trimSuffix(word, value ?? '', greedy) : trimPrefix(word, value ?? '', greedy);
        }
        default:
          fail(`unsupported modifier (${chs}) in substitution`);
      }
    }
    if (ch === 0x2f /* / */) {
      const all = this.peek() === 0x2f;
      if (all) this.next();
      const pattern = this.processUntil(0x2f, true, "syntax error: missing '/' in ${}");
      const replacement = this.processUntil(0x7d, true, "syntax error: missing '}'");
      const value = this.getEnv(name);
      if (this.opts.skipUnset && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
      const v = value ?? '';
      const glob = new ShellGlob(pattern, true);
      const text = new CodePoints(v);
      if (!all) {
        const m = glob.find(text, 0, false);
        return m ? checkSize(text.slice(0, m[0]) + replacement + text.slice(m[1])) : v;
      }
      // bounded before it is built: v × replacement could be terabytes
      let out = '';
      let last = 0;
      let prevEnd = -1;
      for (let pos = 0; pos <= text.length; ) {
        const m = glob.find(text, pos, false);
        if (!m) break;
        // Go's ReplaceAllString: an empty match right after the previous match is ignored
        if (!(m[0] === m[1] && m[0] === prevEnd)) {
          out = checkSize(out + text.slice(last, m[0]) + replacement);
          last = m[1];
        }
        prevEnd = m[1];
        // an empty match moves on one character, which stays in the result
        pos = m[1] === m[0] ? m[1] + 1 : m[1];
      }
      return checkSize(out + text.slice(last));
    }
    if (ch === EOF) fail("syntax error: missing '}'");
    fail(`unsupported modifier (${chs}) in substitution`);
  }
}

/**
 * Most steps one `${VAR#…}`, `${VAR%…}` or `${VAR/…}` may take (pattern length
 * × value length): the matcher is linear in each, but both can be a mebibyte.
 */
export const MAX_PATTERN_WORK = 64 * 1024 * 1024;

/** A string as code points, with the UTF-16 offset of each, so slices cut whole characters. */
class CodePoints {
  readonly cps: number[] = [];
  private readonly offsets: number[] = [];
  constructor(readonly text: string) {
    let i = 0;
    for (const ch of text) {
      this.offsets.push(i);
      this.cps.push(ch.codePointAt(0)!);
      i += ch.length;
    }
    this.offsets.push(i);
  }
  get length(): number {
    return this.cps.length;
  }
  slice(from: number, to = this.cps.length): string {
    return this.text.slice(this.offsets[from], this.offsets[to]);
  }
}

type GlobToken = { kind: 'lit'; c: number } | { kind: 'any' } | { kind: 'star' };
interface Thread {
  pc: number;
  start: number;
}

/**
 * A shell glob (`*`, `?`, `\x`) as BuildKit's convertShellPatternToRegex reads
 * it, matched with the leftmost-first semantics of Go's regexp (and of a
 * backtracking RegExp) by a Pike VM: threads in priority order, each state at
 * most once per character. The RegExp it replaces backtracked: `*a*a*a…c`
 * over a long value never finished.
 */
class ShellGlob {
  private readonly tokens: GlobToken[] = [];
  private readonly mark: Uint32Array;
  private generation = 0;

  constructor(
    private readonly pattern: string,
    private readonly greedy: boolean,
  ) {
    const chars = Array.from(pattern);
    for (let i = 0; i < chars.length; i++) {
      const c = chars[i]!;
      if (c === '*') {
        // ** is *, greedy or not: one state instead of a chain
        if (this.tokens[this.tokens.length - 1]?.kind !== 'star') this.tokens.push({ kind: 'star' });
        continue;
      }
      if (c === '?') {
        this.tokens.push({ kind: 'any' });
        continue;
      }
      if (c === '\\') {
        const n = chars[i + 1];
        if (n === '}' || n === '/') continue;
        i++;
        if (n !== '*' && n !== '?' && n !== '\\') fail(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n ?? ''}'`);
        this.tokens.push({ kind: 'lit', c: n.codePointAt(0)! });
        continue;
      }
      this.tokens.push({ kind: 'lit', c: c.codePointAt(0)! });
    }
    this.mark = new Uint32Array(this.tokens.length + 1);
  }

  /** The first match at or after `from` (only at `from` when anchored): [start, end) in code points. */
  find(text: CodePoints, from: number, anchored: boolean): [number, number] | undefined {
    const m = this.tokens.length;
    if ((m + 1) * (text.length - from + 1) > MAX_PATTERN_WORK) {
      fail(`substitution pattern of ${Array.from(this.pattern).length} characters over a value of ${text.length} is more work than the limit of ${MAX_PATTERN_WORK}`);
    }
    let matched: [number, number] | undefined;
    this.generation++;
    let clist: Thread[] = [];
    this.add(clist, 0, from);
    for (let pos = from; ; pos++) {
      const c = pos < text.length ? text.cps[pos]! : -1;
      this.generation++;
      const nlist: Thread[] = [];
      for (const t of clist) {
        if (t.pc === m) {
          matched = [t.start, pos];
          // lower-priority threads lose to this match
          break;
        }
        if (c === -1) continue;
        const tok = this.tokens[t.pc]!;
        if (tok.kind === 'star') this.add(nlist, t.pc, t.start);
        // `.` in Go's (and a non-dotAll RegExp's) syntax: anything but a newline
        else if (tok.kind === 'any') {
          if (c !== 10) this.add(nlist, t.pc + 1, t.start);
        } else if (tok.c === c) this.add(nlist, t.pc + 1, t.start);
      }
      if (c === -1) break;
      // a match starting further right has the lowest priority, and none once one is found
      if (!anchored && !matched) this.add(nlist, 0, pos + 1);
      if (nlist.length === 0) break;
      clist = nlist;
    }
    return matched;
  }

  private add(list: Thread[], pc: number, start: number): void {
    if (this.mark[pc] === this.generation) return;
    this.mark[pc] = this.generation;
    const tok = this.tokens[pc];
    if (tok?.kind !== 'star') {
      list.push({ pc, start });
      return;
    }
    // the star's own thread consumes one more character; pc + 1 skips it. Greedy prefers consuming.
    if (this.greedy) {
      list.push({ pc, start });
      this.add(list, pc + 1, start);
    } else {
      this.add(list, pc + 1, start);
      list.push({ pc, start });
    }
  }
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const text = new CodePoints(value);
  const m = new ShellGlob(pattern, greedy).find(text, 0, true);
  return m ? text.slice(m[1]) : value;
}

// A regex can't find the shortest rightmost match, so reverse both and search leftmost.
function reversePattern(pattern: string): string {
  const r = Array.from(pattern);
  const out: string[] = new Array<string>(r.length);
  const last = r.length - 1;
  for (let i = 0; i <= last; ) {
    const c = r[i]!;
    if (i !== last && c === '\\') {
      out[last - i - 1] = c;
      out[last - i] = r[i + 1]!;
      i += 2;
    } else {
      out[last - i] = c;
      i++;
    }
  }
  return out.join('');
}

function reverse(s: string): string {
  return Array.from(s).reverse().join('');
}

function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}
