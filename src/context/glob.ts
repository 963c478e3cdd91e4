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

/** Matches `name` against `pattern` exactly as Go's filepath.Match; throws BadPatternError on a malformed pattern. */
export function goMatch(pattern: string, name: string): boolean {
  const res = match(Array.from(pattern), Array.from(name));
  if (res === 'bad') throw new BadPatternError(pattern);
  return res;
}

/** Throws BadPatternError when Go would reject the pattern. */
export function checkPattern(pattern: string): void {
  goMatch(pattern, '.');
}

type Chars = string[];
type Res = boolean | 'bad';

function match(pattern: Chars, name: Chars): Res {
  let p = pattern;
  let n = name;
  outer: while (p.length > 0) {
    const { star, chunk, rest } = scanChunk(p);
    p = rest;
    if (star && chunk.length === 0) return !n.includes('/');
    const m = matchChunk(chunk, n);
    if (m.ok && (m.rest.length === 0 || p.length > 0)) {
      n = m.rest;
      continue;
    }
    if (m.bad) return 'bad';
    if (star) {
      for (let i = 0; i < n.length && n[i] !== '/'; i++) {
        const m2 = matchChunk(chunk, n.slice(i + 1));
        if (m2.ok) {
          if (p.length === 0 && m2.rest.length > 0) continue;
          n = m2.rest;
          continue outer;
        }
        if (m2.bad) return 'bad';
      }
    }
    while (p.length > 0) {
      const s = scanChunk(p);
      p = s.rest;
      if (matchChunk(s.chunk, []).bad) return 'bad';
    }
    return false;
  }
  return n.length === 0;
}

function scanChunk(pattern: Chars): { star: boolean; chunk: Chars; rest: Chars } {
  let p = pattern;
  let star = false;
  while (p.length > 0 && p[0] === '*') {
    p = p.slice(1);
    star = true;
  }
  let inrange = false;
  let i = 0;
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
  return { star, chunk: p.slice(0, i), rest: p.slice(i) };
}

function matchChunk(chunkIn: Chars, sIn: Chars): { rest: Chars; ok: boolean; bad: boolean } {
  let chunk = chunkIn;
  let s = sIn;
  let failed = false;
  const bad = { rest: [], ok: false, bad: true };
  while (chunk.length > 0) {
    if (!failed && s.length === 0) failed = true;
    const c = chunk[0];
    if (c === '[') {
      let r = '';
      if (!failed) {
        r = s[0]!;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
      let negated = false;
      if (chunk.length > 0 && chunk[0] === '^') {
        negated = true;
        chunk = chunk.slice(1);
      }
      let matched = false;
      let nrange = 0;
      for (;;) {
        if (chunk.length > 0 && chunk[0] === ']' && nrange > 0) {
          chunk = chunk.slice(1);
          break;
        }
        const lo = getEsc(chunk);
        if (!lo) return bad;
        chunk = lo.rest;
        let hi = lo.r;
        if (chunk[0] === '-') {
          const h = getEsc(chunk.slice(1));
          if (!h) return bad;
          hi = h.r;
          chunk = h.rest;
        }
        if (!failed && cp(lo.r) <= cp(r) && cp(r) <= cp(hi)) matched = true;
        nrange++;
      }
      if (matched === negated) failed = true;
    } else if (c === '?') {
      if (!failed) {
        if (s[0] === '/') failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    } else {
      if (c === '\\') {
        chunk = chunk.slice(1);
        if (chunk.length === 0) return bad;
      }
      if (!failed) {
        if (chunk[0] !== s[0]) failed = true;
        s = s.slice(1);
      }
      chunk = chunk.slice(1);
    }
  }
  if (failed) return { rest: [], ok: false, bad: false };
  return { rest: s, ok: true, bad: false };
}

function getEsc(chunkIn: Chars): { r: string; rest: Chars } | undefined {
  let chunk = chunkIn;
  if (chunk.length === 0 || chunk[0] === '-' || chunk[0] === ']') return undefined;
  if (chunk[0] === '\\') {
    chunk = chunk.slice(1);
    if (chunk.length === 0) return undefined;
  }
  const r = chunk[0]!;
  const rest = chunk.slice(1);
  if (rest.length === 0) return undefined;
  return { r, rest };
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
