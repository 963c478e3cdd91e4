/**
 * Go's `filepath.Match` (Unix flavour), the wildcard syntax Dockerfile COPY/ADD
 * sources and `.dockerignore` syntax checks use. Ported rather than mapped onto
 * a regex because its error rules (a trailing `\`, `[]`, `[a-]`) decide whether
 * a pattern is accepted at all, and BuildKit users rely on them.
 */

export class BadPatternError extends Error {
  constructor(pattern: string) {
    super(`syntax error in pattern "${pattern}"`);
    this.name = 'BadPatternError';
  }
}

/** True when `s` holds any of Go's wildcard characters (`*?[\`). */
export function hasMeta(s: string): boolean {
  return /[*?[\\]/.test(s);
}

/**
 * Counts the work done by matchers, so tests can assert a bound on it
 * (steps grow with pattern × name length, never exponentially).
 */
export class WorkMeter {
  steps = 0;
}

/**
 * Matches `name` against `pattern` exactly as Go's filepath.Match; throws BadPatternError on a malformed pattern.
 *
 * Go's algorithm never backtracks past an earlier `*` (the leftmost match of
 * each star-separated chunk is always a right choice), so the work is at most
 * O(|pattern| × |name|). The port walks indices into code-point arrays; the
 * first version sliced arrays at every chunk, which made a 64 KB pattern
 * quadratic in its own length before matching anything.
 */
export function goMatch(pattern: string, name: string, meter?: WorkMeter): boolean {
  const res = match(Array.from(pattern), Array.from(name), meter);
  if (res === 'bad') throw new BadPatternError(pattern);
  return res;
}

/** Throws BadPatternError when Go would reject the pattern. */
export function checkPattern(pattern: string, meter?: WorkMeter): void {
  goMatch(pattern, '.', meter);
}

type Chars = readonly string[];
type Res = boolean | 'bad';
interface Chunk {
  star: boolean;
  start: number;
  end: number;
}
/** matchChunk's result: the index in name after the chunk, or a failure. */
type ChunkRes = number | 'fail' | 'bad';

function match(p: Chars, n: Chars, meter: WorkMeter | undefined): Res {
  let pi = 0;
  let ni = 0;
  outer: while (pi < p.length) {
    const chunk = scanChunk(p, pi);
    pi = chunk.end;
    if (meter) meter.steps += chunk.end - chunk.start + 1;
    if (chunk.star && chunk.start === chunk.end) {
      for (let i = ni; i < n.length; i++) if (n[i] === '/') return false;
      return true;
    }
    const m = matchChunk(p, chunk.start, chunk.end, n, ni, meter);
    if (typeof m === 'number' && (m === n.length || pi < p.length)) {
      ni = m;
      continue;
    }
    if (m === 'bad') return 'bad';
    if (chunk.star) {
      for (let i = ni; i < n.length && n[i] !== '/'; i++) {
        const m2 = matchChunk(p, chunk.start, chunk.end, n, i + 1, meter);
        if (typeof m2 === 'number') {
          if (pi === p.length && m2 < n.length) continue;
          ni = m2;
          continue outer;
        }
        if (m2 === 'bad') return 'bad';
      }
    }
    // before returning false, check that the rest of the pattern is well formed
    while (pi < p.length) {
      const c = scanChunk(p, pi);
      pi = c.end;
      if (matchChunk(p, c.start, c.end, [], 0, meter) === 'bad') return 'bad';
    }
    return false;
  }
  return ni === n.length;
}

function scanChunk(p: Chars, from: number): Chunk & { end: number } {
  let i = from;
  let star = false;
  while (i < p.length && p[i] === '*') {
    i++;
    star = true;
  }
  const start = i;
  let inrange = false;
  scan: for (; i < p.length; i++) {
    switch (p[i]) {
      case '\\':
        if (i + 1 < p.length) i++;
        break;
      case '[':
        inrange = true;
        break;
      case ']':
        inrange = false;
        break;
      case '*':
        if (!inrange) break scan;
        break;
    }
  }
  return { star, start, end: i };
}

function matchChunk(p: Chars, from: number, to: number, s: Chars, sFrom: number, meter: WorkMeter | undefined): ChunkRes {
  let ci = from;
  let si = sFrom;
  let failed = false;
  while (ci < to) {
    if (meter) meter.steps++;
    if (!failed && si >= s.length) failed = true;
    const c = p[ci];
    if (c === '[') {
      let r = '';
      if (!failed) r = s[si++]!;
      ci++;
      let negated = false;
      if (ci < to && p[ci] === '^') {
        negated = true;
        ci++;
      }
      let matched = false;
      let nrange = 0;
      for (;;) {
        if (ci < to && p[ci] === ']' && nrange > 0) {
          ci++;
          break;
        }
        const lo = getEsc(p, ci, to);
        if (!lo) return 'bad';
        ci = lo.next;
        let hi = lo.r;
        if (p[ci] === '-' && ci < to) {
          const h = getEsc(p, ci + 1, to);
          if (!h) return 'bad';
          hi = h.r;
          ci = h.next;
        }
        if (!failed && cp(lo.r) <= cp(r) && cp(r) <= cp(hi)) matched = true;
        nrange++;
      }
      if (matched === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[si] === '/') failed = true;
        si++;
      }
      ci++;
    } else {
      if (c === '\\') {
        ci++;
        if (ci >= to) return 'bad';
      }
      if (!failed) {
        if (p[ci] !== s[si]) failed = true;
        si++;
      }
      ci++;
    }
  }
  return failed ? 'fail' : si;
}

function getEsc(p: Chars, from: number, to: number): { r: string; next: number } | undefined {
  let i = from;
  if (i >= to || p[i] === '-' || p[i] === ']') return undefined;
  if (p[i] === '\\') {
    i++;
    if (i >= to) return undefined;
  }
  const r = p[i]!;
  i++;
  if (i >= to) return undefined;
  return { r, next: i };
}

function cp(c: string): number {
  return c.codePointAt(0) ?? -1;
}

/** Go's path.Clean for "/"-separated paths. */
export function cleanPath(p: string): string {
  if (p === '') return '.';
  const rooted = p.startsWith('/');
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!rooted) out.push('..');
      continue;
    }
    out.push(seg);
  }
  const joined = out.join('/');
  if (rooted) return '/' + joined;
  return joined === '' ? '.' : joined;
}
