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
      const re = shellPatternToRegex(pattern, true, false, all);
      if (all) {
        // bounded before it is built: v × replacement could be terabytes
        let out = 0;
        v.replace(re, (m) => {
          out += replacement.length - m.length;
          return '';
        });
        if (v.length + out > MAX_EXPANDED_WORD) checkSize(' '.repeat(MAX_EXPANDED_WORD + 1));
        return v.replace(re, () => replacement);
      }
      const m = re.exec(v);
      if (!m) return v;
      return v.slice(0, m.index) + replacement + v.slice(m.index + m[0].length);
    }
    if (ch === EOF) fail("syntax error: missing '}'");
    fail(`unsupported modifier (${chs}) in substitution`);
  }
}

function escapeRegex(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&');
}

/** Shell glob (`*`, `?`, `\x`) → RegExp, as BuildKit's convertShellPatternToRegex. */
function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean, global = false): RegExp {
  const chars = Array.from(pattern);
  let out = anchored ? '^' : '';
  const star = greedy ? '[^]*' : '[^]*?';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === '*') {
      out += star;
      continue;
    }
    if (c === '?') {
      out += '.';
      continue;
    }
    if (c === '\\') {
      const n = chars[i + 1];
      if (n === '}' || n === '/') continue;
      i++;
      if (n !== '*' && n !== '?' && n !== '\\') fail(`invalid pattern (${pattern}) in substitution: invalid escape '\\${n ?? ''}'`);
      out += escapeRegex(n);
      continue;
    }
    out += escapeRegex(c);
  }
  return new RegExp(out, global ? 'gu' : 'u');
}

function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPatternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m[0].length) : value;
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
