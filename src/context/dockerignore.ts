import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative } from 'node:path';
import { KilnError } from '../errors/index.js';
import { openFileInRoot } from '../fs/open-in-root.js';
import { BadPatternError, checkPattern, cleanPath, hasMeta, WorkMeter } from './glob.js';
import { PatternNfa, RegexSyntaxError } from './pattern-nfa.js';

/**
 * `.dockerignore` matching as BuildKit does it: moby/patternmatcher patterns,
 * evaluated top-down by the fsutil walk (MatchesUsingParentResults). Written
 * here instead of wrapping `ignore`, because `ignore` implements gitignore
 * (unanchored basenames, `!` unable to re-include below an excluded directory,
 * `[!a]` negation), which contradicts Docker in 26 of the 77 conformance cases;
 * a wrapper would have to rewrite nearly every pattern.
 */

/**
 * Bounds on ignore patterns. Matching is linear in pattern × path length (see
 * PatternNfa), so these only keep one hostile file from multiplying that by
 * an unreasonable amount; real files are far below them.
 */
export const MAX_IGNORE_FILE_BYTES = 1024 * 1024;
export const MAX_PATTERN_BYTES = 64 * 1024;
export const MAX_PATTERNS = 10_000;

/**
 * `ignorefile.ReadAll`: raw file text → cleaned pattern lines (exceptions keep their leading `!`).
 * `file` names the file in errors about the caps.
 */
export function readIgnoreFile(text: string, file = '.dockerignore'): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const raw = lines[n]!;
    if (raw.startsWith('#')) continue;
    let pattern = raw.trim();
    if (pattern === '') continue;
    const size = Buffer.byteLength(pattern);
    if (size > MAX_PATTERN_BYTES) {
      throw new KilnError('CONTEXT', `pattern of ${size} bytes is longer than the limit of ${MAX_PATTERN_BYTES}`, { location: { file, line: n + 1 } });
    }
    if (out.length === MAX_PATTERNS) {
      throw new KilnError('CONTEXT', `more than ${MAX_PATTERNS} patterns`, { location: { file, line: n + 1 } });
    }
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern.length > 0) {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push(invert ? '!' + pattern : pattern);
  }
  return out;
}

type MatchKind = 'exact' | 'prefix' | 'suffix' | 'regexp';

class Pattern {
  readonly exclusion: boolean;
  readonly cleaned: string;
  private kind: MatchKind = 'exact';
  private nfa: PatternNfa | undefined;

  constructor(line: string, what: string, meter: WorkMeter) {
    let p = cleanPath(line.trim());
    this.exclusion = p.startsWith('!');
    if (this.exclusion) {
      if (p.length === 1) throw new KilnError('CONTEXT', 'illegal exclusion pattern: "!"');
      p = p.slice(1);
    }
    try {
      checkPattern(p, meter);
    } catch (e) {
      if (e instanceof BadPatternError) throw new KilnError('CONTEXT', `invalid ${what} pattern "${line}": ${e.message}`);
      throw e;
    }
    this.cleaned = p;
    this.compile();
  }

  private compile(): void {
    const chars = Array.from(this.cleaned);
    let re = '^';
    let kind: MatchKind = 'exact';
    for (let i = 0, k = 0; k < chars.length; i++) {
      const ch = chars[k++]!;
      if (ch === '*') {
        if (chars[k] === '*') {
          k++;
          if (chars[k] === '/') k++;
          if (k >= chars.length) {
            if (kind === 'exact') kind = 'prefix';
            else {
              re += '.*';
              kind = 'regexp';
            }
          } else {
            re += '(.*/)?';
            kind = 'regexp';
          }
          if (i === 0) kind = 'suffix';
        } else {
          re += '[^/]*';
          kind = 'regexp';
        }
      } else if (ch === '?') {
        re += '[^/]';
        kind = 'regexp';
      } else if ('.+()|{}$'.includes(ch)) {
        re += '\\' + ch;
      } else if (ch === '\\') {
        if (k < chars.length) {
          re += escapeLiteral(chars[k++]!);
          kind = 'regexp';
        } else re += '\\\\';
      } else if (ch === '[' || ch === ']') {
        re += ch;
        kind = 'regexp';
      } else {
        re += ch === '/' ? '\\/' : ch;
      }
    }
    if (kind === 'regexp') {
      try {
        this.nfa = new PatternNfa(re);
      } catch (e) {
        if (e instanceof RegexSyntaxError) throw new KilnError('CONTEXT', `invalid pattern "${this.cleaned}": ${e.message}`);
        throw e;
      }
    }
    this.kind = kind;
  }

  match(path: string, meter: WorkMeter): boolean {
    switch (this.kind) {
      case 'exact':
        return path === this.cleaned;
      case 'prefix':
        return path.startsWith(this.cleaned.slice(0, -2));
      case 'suffix': {
        const suffix = this.cleaned.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith('/') && path === suffix.slice(1);
      }
      case 'regexp':
        return this.nfa!.matches(path, meter);
    }
  }
}

// Go's regexp treats `\x` for punctuation as the literal; JS without the `u` flag agrees for
// punctuation but would turn `\d`, `\w`, `\b`… into classes, so letters and digits are emitted bare.
function escapeLiteral(ch: string): string {
  return /[A-Za-z0-9]/.test(ch) ? ch : '\\' + ch;
}

/** Per-pattern match results of a directory, threaded to its children by the walk. */
export type MatchInfo = readonly boolean[];

export class PatternMatcher {
  private readonly patterns: Pattern[];
  /** True when some pattern is an exception, so an excluded directory may still hold included entries. */
  readonly hasExceptions: boolean;

  /**
   * When every exception is a plain path (no wildcards), those paths; an
   * excluded directory then only needs a look inside when one of them lies
   * below it (fsutil's onlyPrefixExcludeExceptions shortcut).
   */
  private readonly literalExceptions: string[] | undefined;

  /** `what` names the patterns' origin in errors (".dockerignore", "--exclude"). */
  /** Work done so far by every match of this matcher (tests bound it; see PatternNfa). */
  readonly meter = new WorkMeter();

  constructor(lines: readonly string[], what = '.dockerignore') {
    const kept = lines.filter((l) => l.trim() !== '');
    if (kept.length > MAX_PATTERNS) throw new KilnError('CONTEXT', `${what} holds ${kept.length} patterns; the limit is ${MAX_PATTERNS}`);
    for (const l of kept) {
      const size = Buffer.byteLength(l);
      if (size > MAX_PATTERN_BYTES) throw new KilnError('CONTEXT', `${what} pattern of ${size} bytes is longer than the limit of ${MAX_PATTERN_BYTES}`);
    }
    this.patterns = kept.map((l) => new Pattern(l, what, this.meter));
    this.hasExceptions = this.patterns.some((p) => p.exclusion);
    const exceptions = this.patterns.filter((p) => p.exclusion).map((p) => p.cleaned);
    this.literalExceptions = exceptions.some((e) => hasMeta(e)) ? undefined : exceptions.map((e) => e + '/');
  }

  /** Whether an excluded directory may hold re-included entries. */
  mayReinclude(dir: string): boolean {
    if (!this.hasExceptions) return false;
    if (!this.literalExceptions) return true;
    const prefix = dir + '/';
    return this.literalExceptions.some((e) => e.startsWith(prefix));
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** The fsutil walk's verdict for `path` given its parent directory's MatchInfo (empty array at the root). */
  matchWithParent(path: string, parent: MatchInfo): { excluded: boolean; info: MatchInfo } {
    let matched = false;
    const info: boolean[] = new Array<boolean>(this.patterns.length);
    for (let i = 0; i < this.patterns.length; i++) {
      const pattern = this.patterns[i]!;
      let m = parent.length !== 0 ? parent[i]! : false;
      if (!m) {
        if (pattern.exclusion !== matched) {
          info[i] = false;
          continue;
        }
        m = pattern.match(path, this.meter);
      }
      info[i] = m;
      if (m) matched = !pattern.exclusion;
    }
    return { excluded: matched, info };
  }

  /** Verdict for a path evaluated top-down through each ancestor, as the context walk would. */
  excludes(path: string): boolean {
    const segs = path.split('/');
    let info: MatchInfo = [];
    let excluded = false;
    for (let i = 1; i <= segs.length; i++) {
      const r = this.matchWithParent(segs.slice(0, i).join('/'), info);
      info = r.info;
      excluded = r.excluded;
    }
    return excluded;
  }
}

/**
 * The ignore file BuildKit would use: `<Dockerfile>.dockerignore` beside the
 * Dockerfile wins over the context root's `.dockerignore`.
 */
export function findIgnoreFile(contextDir: string, dockerfilePath?: string): string | undefined {
  return ignoreFileCandidates(contextDir, dockerfilePath).find((f) => existsSync(f));
}

/** Where an ignore file is looked for, first found wins: beside the Dockerfile, then the context root. */
function ignoreFileCandidates(contextDir: string, dockerfilePath?: string): string[] {
  const root = join(contextDir, '.dockerignore');
  return dockerfilePath ? [join(dirname(dockerfilePath), basename(dockerfilePath) + '.dockerignore'), root] : [root];
}

export function loadIgnoreFile(file: string | undefined, readFrom = file): PatternMatcher {
  if (file === undefined || readFrom === undefined) return new PatternMatcher([]);
  const size = statSync(readFrom).size;
  if (size > MAX_IGNORE_FILE_BYTES) {
    throw new KilnError('CONTEXT', `${file}: ${size} bytes is larger than the limit of ${MAX_IGNORE_FILE_BYTES} for an ignore file`);
  }
  return new PatternMatcher(readIgnoreFile(readFileSync(readFrom, 'utf8'), file), basename(file));
}

/**
 * findIgnoreFile and loadIgnoreFile for a context that came from elsewhere (stdin, a download, a
 * git checkout): each candidate is resolved inside the context as BuildKit reads it from the
 * context's snapshot, so an ignore file that is a link to a host file reads nothing of the host
 * (its text would otherwise become the patterns, and an error quoting it would print it).
 */
export function loadContainedIgnoreFile(contextDir: string, dockerfilePath?: string): { matcher: PatternMatcher; file: string | undefined } {
  for (const file of ignoreFileCandidates(contextDir, dockerfilePath)) {
    const rel = relative(contextDir, file);
    // a Dockerfile the user named outside the context: its ignore file is the user's own
    if (rel.startsWith('..') || isAbsolute(rel)) {
      if (existsSync(file)) return { matcher: loadIgnoreFile(file), file };
      continue;
    }
    const opened = openFileInRoot(contextDir, rel, { chroot: true, label: 'the build context', what: rel });
    if (opened === undefined) continue;
    try {
      return { matcher: loadIgnoreFile(file, opened.path), file };
    } finally {
      opened.close();
    }
  }
  return { matcher: new PatternMatcher([]), file: undefined };
}
