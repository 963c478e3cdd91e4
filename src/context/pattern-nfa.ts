/**
 * A linear-time matcher for the regular expressions moby/patternmatcher builds
 * from `.dockerignore` patterns (`*` → `[^/]*`, `?` → `[^/]`, `**` → `(.*\/)?`
 * or `.*`, brackets passed through, everything else escaped).
 *
 * Docker compiles those with Go's regexp, an automaton that never backtracks.
 * JavaScript's RegExp backtracks, so a line like `*a*a*a…b` took seconds per
 * path (a 64 KB line took over a minute). This parses exactly that regexp
 * subset, with Go's semantics (`.` stops at `\n`, negated classes do not,
 * `^` anchors at the start of the text, POSIX `[:name:]` classes), and runs it
 * as a Thompson NFA: every state is visited at most once per input character,
 * so matching costs O(pattern × path) whatever the pattern.
 */
import type { WorkMeter } from './glob.js';

export class RegexSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegexSyntaxError';
  }
}

/** Code-point ranges, inclusive, as [lo, hi, lo, hi, …]. */
interface CharSet {
  ranges: number[];
  negated: boolean;
}

type Token =
  | { kind: 'one'; set: CharSet }
  | { kind: 'star'; set: CharSet }
  /** `(.*\/)?`: nothing, or anything that ends in a slash. */
  | { kind: 'dirs' }
  /** `^` in Go's default (one-line) mode: only at the start of the text. */
  | { kind: 'bol' };

const DOT: CharSet = { ranges: [10, 10], negated: true };
const NEWLINE = 10;
const SLASH = 0x2f;

const POSIX: Record<string, number[]> = {
  alnum: [0x30, 0x39, 0x41, 0x5a, 0x61, 0x7a],
  alpha: [0x41, 0x5a, 0x61, 0x7a],
  ascii: [0x00, 0x7f],
  blank: [0x09, 0x09, 0x20, 0x20],
  cntrl: [0x00, 0x1f, 0x7f, 0x7f],
  digit: [0x30, 0x39],
  graph: [0x21, 0x7e],
  lower: [0x61, 0x7a],
  print: [0x20, 0x7e],
  punct: [0x21, 0x2f, 0x3a, 0x40, 0x5b, 0x60, 0x7b, 0x7e],
  space: [0x09, 0x0d, 0x20, 0x20],
  upper: [0x41, 0x5a],
  word: [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a],
  xdigit: [0x30, 0x39, 0x41, 0x46, 0x61, 0x66],
};

function inSet(set: CharSet, c: number): boolean {
  let hit = false;
  const r = set.ranges;
  for (let i = 0; i < r.length; i += 2) {
    if (r[i]! <= c && c <= r[i + 1]!) {
      hit = true;
      break;
    }
  }
  return hit !== set.negated;
}

/** Go accepts `\x` only for ASCII punctuation (and kiln never emits `\` before a letter or digit). */
function escaped(c: number | undefined): number {
  if (c === undefined) throw new RegexSyntaxError('trailing backslash');
  if (c >= 0x80) throw new RegexSyntaxError(`invalid escape \\${String.fromCodePoint(c)}`);
  return c;
}

function parseClass(re: Uint32Array, start: number): { set: CharSet; next: number } {
  let i = start + 1;
  const set: CharSet = { ranges: [], negated: false };
  if (re[i] === 0x5e) {
    set.negated = true;
    i++;
  }
  let first = true;
  for (;;) {
    const c = re[i];
    if (c === undefined) throw new RegexSyntaxError('missing closing ]');
    if (c === 0x5d && !first) return { set, next: i + 1 };
    first = false;
    // [:name:] and [:^name:]
    if (c === 0x5b && re[i + 1] === 0x3a) {
      const close = findPosixEnd(re, i + 2);
      if (close !== -1) {
        let name = String.fromCodePoint(...re.slice(i + 2, close));
        const neg = name.startsWith('^');
        if (neg) name = name.slice(1);
        const ranges = POSIX[name];
        if (!ranges) throw new RegexSyntaxError(`invalid character class range [:${name}:]`);
        set.ranges.push(...(neg ? complement(ranges) : ranges));
        i = close + 2;
        continue;
      }
    }
    let lo = c;
    i++;
    if (c === 0x5c) lo = escaped(re[i++]);
    let hi = lo;
    if (re[i] === 0x2d && re[i + 1] !== undefined && re[i + 1] !== 0x5d) {
      i++;
      hi = re[i++]!;
      if (hi === 0x5c) hi = escaped(re[i++]);
      if (hi < lo) throw new RegexSyntaxError('invalid character class range');
    }
    set.ranges.push(lo, hi);
  }
}

function findPosixEnd(re: Uint32Array, from: number): number {
  for (let j = from; j + 1 < re.length; j++) {
    if (re[j] === 0x3a && re[j + 1] === 0x5d) return j;
    if (re[j] === 0x5d) return -1;
  }
  return -1;
}

function complement(ranges: number[]): number[] {
  const out: number[] = [];
  let next = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    if (ranges[i]! > next) out.push(next, ranges[i]! - 1);
    next = ranges[i + 1]! + 1;
  }
  out.push(next, 0x10ffff);
  return out;
}

function codePoints(s: string): Uint32Array {
  const out = new Uint32Array(s.length);
  let n = 0;
  for (const ch of s) out[n++] = ch.codePointAt(0)!;
  return out.subarray(0, n);
}

function sameSet(a: CharSet, b: CharSet): boolean {
  return a.negated === b.negated && a.ranges.length === b.ranges.length && a.ranges.every((r, k) => r === b.ranges[k]);
}

const DIRS_TEXT = Array.from('(.*/)?', (c) => c.codePointAt(0)!);

function parse(source: string): Token[] {
  // a typed array: reads past the end (the parser peeks ahead) stay cheap
  const re = codePoints(source);
  const out: Token[] = [];
  let i = 0;
  while (i < re.length) {
    const c = re[i]!;
    let atom: CharSet | undefined;
    if (c === 0x28) {
      // the only group the compiler emits
      if (!DIRS_TEXT.every((d, k) => re[i + k] === d)) throw new RegexSyntaxError('unexpected (');
      i += DIRS_TEXT.length;
      if (out[out.length - 1]?.kind !== 'dirs') out.push({ kind: 'dirs' });
      continue;
    }
    if (c === 0x5e) {
      out.push({ kind: 'bol' });
      i++;
      continue;
    }
    if (c === 0x2a || c === 0x3f || c === 0x2b || c === 0x29 || c === 0x7c || c === 0x24 || c === 0x7b) {
      throw new RegexSyntaxError(`unexpected ${String.fromCodePoint(c)}`);
    }
    if (c === 0x5b) {
      const cls = parseClass(re, i);
      atom = cls.set;
      i = cls.next;
    } else if (c === 0x2e) {
      atom = DOT;
      i++;
    } else if (c === 0x5c) {
      const e = escaped(re[i + 1]);
      atom = { ranges: [e, e], negated: false };
      i += 2;
    } else {
      atom = { ranges: [c, c], negated: false };
      i++;
    }
    if (re[i] === 0x2a) {
      i++;
      // x*x* is x*: merging keeps the state count down for runs of stars
      const prev = out[out.length - 1];
      if (!(prev?.kind === 'star' && sameSet(prev.set, atom))) out.push({ kind: 'star', set: atom });
    } else {
      out.push({ kind: 'one', set: atom });
    }
  }
  return out;
}

/**
 * `^` matches only at position 0, so everything before the last one must match
 * nothing: drop it when it can (stars, optional groups), or make the pattern
 * match nothing when it cannot. Exact, and it keeps `*^*^*^…` from holding
 * thousands of states alive. The result holds no `bol` token.
 */
function dropAnchors(tokens: Token[]): Token[] {
  let last = -1;
  for (let i = 0; i < tokens.length; i++) if (tokens[i]!.kind === 'bol') last = i;
  if (last === -1) return tokens;
  // a token that must consume a character before the anchor: no text can match
  if (tokens.slice(0, last).some((t) => t.kind === 'one')) return [{ kind: 'one', set: { ranges: [], negated: false } }];
  return tokens.slice(last + 1);
}

/**
 * A compiled pattern. States are 2·i (before token i) and 2·i+1 (inside the
 * `(.*\/)?` at token i); state 2·n accepts.
 */
export class PatternNfa {
  private readonly tokens: Token[];
  /** Characters any match must hold: a shorter path is rejected without running. */
  private readonly minLength: number;
  private readonly mark: Uint32Array;
  private generation = 0;
  private cur: Int32Array;
  private next: Int32Array;
  private readonly stack: Int32Array;

  /** Throws RegexSyntaxError where Go's regexp.Compile would fail. */
  constructor(regex: string) {
    this.tokens = dropAnchors(parse(regex));
    this.minLength = this.tokens.filter((t) => t.kind === 'one').length;
    const states = 2 * this.tokens.length + 2;
    this.mark = new Uint32Array(states);
    this.cur = new Int32Array(states);
    this.next = new Int32Array(states);
    this.stack = new Int32Array(states);
  }

  /** Whether the whole of `text` matches (the compiled pattern is anchored at both ends). */
  matches(text: string, meter?: WorkMeter): boolean {
    const chars = codePoints(text);
    if (chars.length < this.minLength) return false;
    const accept = 2 * this.tokens.length;
    this.bump();
    let n = this.close(0, 0, this.cur, 0);
    let steps = n;
    for (let pos = 0; pos < chars.length && n > 0; pos++) {
      const c = chars[pos]!;
      this.bump();
      let m = 0;
      for (let k = 0; k < n; k++) {
        const s = this.cur[k]!;
        const i = s >> 1;
        if (i >= this.tokens.length) continue;
        const t = this.tokens[i]!;
        if (s & 1) {
          // inside (.*/)?: any character but newline stays, a slash may also leave
          if (c !== NEWLINE) m = this.close(s, pos + 1, this.next, m);
          if (c === SLASH) m = this.close(2 * (i + 1), pos + 1, this.next, m);
        } else if (t.kind === 'one') {
          if (inSet(t.set, c)) m = this.close(2 * (i + 1), pos + 1, this.next, m);
        } else if (t.kind === 'star') {
          if (inSet(t.set, c)) m = this.close(s, pos + 1, this.next, m);
        }
      }
      steps += n + m;
      [this.cur, this.next] = [this.next, this.cur];
      n = m;
    }
    if (meter) meter.steps += steps;
    for (let k = 0; k < n; k++) if (this.cur[k] === accept) return true;
    return false;
  }

  private bump(): void {
    this.generation++;
    if (this.generation === 0xffffffff) {
      this.mark.fill(0);
      this.generation = 1;
    }
  }

  /** Adds `state` and every state reachable from it without input to `list`; returns the new length. */
  private close(state: number, pos: number, list: Int32Array, length: number): number {
    let n = length;
    let sp = 0;
    const push = (s: number): void => {
      if (this.mark[s] === this.generation) return;
      this.mark[s] = this.generation;
      this.stack[sp++] = s;
    };
    push(state);
    while (sp > 0) {
      const s = this.stack[--sp]!;
      list[n++] = s;
      if (s & 1) continue;
      const i = s >> 1;
      const t = this.tokens[i];
      if (!t) continue;
      if (t.kind === 'star') push(2 * (i + 1));
      else if (t.kind === 'dirs') {
        push(2 * (i + 1));
        push(s + 1);
      } else if (t.kind === 'bol' && pos === 0) push(2 * (i + 1));
    }
    return n;
  }
}
