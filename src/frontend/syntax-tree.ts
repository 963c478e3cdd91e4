/**
 * The low-level parse: Dockerfile text → instruction nodes (keyword, flags,
 * argument words, heredoc bodies, line span), before any instruction-specific
 * meaning. It follows BuildKit's `parser.Parse` rule for rule, so its output
 * can be compared with BuildKit's golden dumps (see conformance.ts).
 */
import { DockerfileError, type TokenRef } from './dockerfile-error.js';
import type { BuildWarning, Directives, Heredoc } from './instructions.js';
import { isGoSpace, processWords } from './shell-lex.js';
import { parseCheckOptions } from './check-directive.js';

export interface SyntaxNode {
  /** Keyword as written. */
  keyword: string;
  /** Flags as written, quotes removed; a bare `--` is dropped. */
  flags: string[];
  /** Argument words; ONBUILD's trigger is a nested node. */
  args: Array<string | SyntaxNode>;
  /** Arguments came from a JSON array. */
  json: boolean;
  /** The logical line, continuation characters removed. */
  original: string;
  /** The part of the logical line after keyword and flags, trimmed. */
  rest: string;
  heredocs: Heredoc[];
  startLine: number;
  startColumn: number;
  endLine: number;
  endColumn: number;
  /** `#` comment lines gathered above the instruction. */
  comments: string[];
}

export interface SyntaxTree<T = SyntaxNode> {
  directives: Directives;
  nodes: T[];
  warnings: BuildWarning[];
}

const MAX_LINE = 65535;
const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const WHITESPACE_SPLIT = /[\t\v\f\r ]+/;
const KNOWN_DIRECTIVES = new Set(['escape', 'syntax', 'check']);
const HEREDOC_KEYWORDS = new Set(['add', 'copy', 'run']);

function parseError(file: string, line: number, message: string, hint?: string, token?: TokenRef): DockerfileError {
  return new DockerfileError('DOCKERFILE_PARSE', message, { location: { file, line }, ...(hint ? { hint } : {}), ...(token ? { token } : {}) });
}

function trimNewline(s: string): string {
  let e = s.length;
  while (e > 0 && (s.charCodeAt(e - 1) === 13 || s.charCodeAt(e - 1) === 10)) e--;
  return e === s.length ? s : s.slice(0, e);
}

// Go's unicode.IsSpace on the line start (BuildKit trims with it).
function trimLeadingWhitespace(s: string): string {
  let i = 0;
  while (i < s.length && isGoSpace(s.charCodeAt(i))) i++;
  return i === 0 ? s : s.slice(i);
}

function firstNonSpace(s: string): number {
  let i = 0;
  while (i < s.length && isGoSpace(s.charCodeAt(i))) i++;
  return i;
}

// Index-based so the per-line checks allocate nothing.
function isComment(raw: string): boolean {
  return raw.charCodeAt(firstNonSpace(raw)) === 0x23;
}

function isBlank(s: string): boolean {
  return firstNonSpace(s) === s.length;
}

/**
 * Strips a trailing continuation (escape + optional blanks). An escape that is
 * itself escaped (`\\` at the end) does not continue the line.
 */
/**
 * Largest Dockerfile kiln reads. Real ones are kilobytes; the cap keeps a
 * hostile one from holding the parser, planner and checks for minutes (every
 * phase is linear, so 4 MiB is a few seconds of work at most).
 */
export const MAX_DOCKERFILE_BYTES = 4 * 1024 * 1024;

/** Throws DOCKERFILE_PARSE naming the line where the text crosses MAX_DOCKERFILE_BYTES. */
export function checkDockerfileSize(text: string, file: string, bytes = Buffer.byteLength(text)): void {
  if (bytes <= MAX_DOCKERFILE_BYTES) return;
  // the line that crosses the limit (UTF-16 offset, close enough to bytes for a message)
  let line = 1;
  for (let i = 0; i < Math.min(text.length, MAX_DOCKERFILE_BYTES); i++) if (text.charCodeAt(i) === 10) line++;
  throw parseError(file, line, `Dockerfile is ${bytes} bytes, larger than the limit of ${MAX_DOCKERFILE_BYTES}`, 'split it or generate less');
}

function trimContinuation(line: string, escape: string): { line: string; end: boolean } {
  let e = line.length;
  while (e > 0 && (line[e - 1] === ' ' || line[e - 1] === '\t')) e--;
  if (e === 0 || line[e - 1] !== escape) return { line, end: true };
  if (e >= 2 && line[e - 2] === escape) return { line, end: true };
  return { line: line.slice(0, e - 1), end: false };
}

function parseCheckDirective(value: string, file: string, line: number): Directives['check'] {
  return parseCheckOptions(value, (message, hint) => {
    throw parseError(file, line, message, hint);
  });
}

/** Splits physical lines exactly like Go's bufio.Scanner with ScanLines (`\n`, trailing `\r` kept for trimNewline). */
function physicalLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/**
 * Parses Dockerfile text into nodes. Throws KilnError('DOCKERFILE_PARSE').
 * With `convert`, each node is converted as soon as it is complete (and never
 * kept), which is how parseDockerfile avoids holding two trees at once.
 */
export function parseSyntaxTree(text: string, file: string): SyntaxTree;
export function parseSyntaxTree<T>(text: string, file: string, convert: (node: SyntaxNode) => T): SyntaxTree<T>;
export function parseSyntaxTree<T>(text: string, file: string, convert?: (node: SyntaxNode) => T): SyntaxTree<T | SyntaxNode> {
  checkDockerfileSize(text, file);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = physicalLines(text);
  const directives: { syntax?: string; escape: '\\' | '`'; check?: Directives['check'] } = { escape: '\\' };
  const warnings: BuildWarning[] = [];
  const nodes: Array<T | SyntaxNode> = [];
  const seen = new Set<string>();
  let directivesDone = false;
  let comments: string[] = [];
  let i = 0; // index of next physical line; line number = i after consuming
  let lastWasDirective = false;

  const directiveCheck = (raw: string, lineNo: number): boolean => {
    if (directivesDone) return false;
    const m = DIRECTIVE.exec(raw);
    if (!m) {
      directivesDone = true;
      return false;
    }
    const k = m[1]!.toLowerCase();
    if (!KNOWN_DIRECTIVES.has(k)) {
      directivesDone = true;
      return false;
    }
    if (seen.has(k)) throw parseError(file, lineNo, `only one ${k} parser directive can be used`, undefined, { kind: 'directive-name' });
    seen.add(k);
    const v = m[2]!;
    if (k === 'escape') {
      if (v !== '`' && v !== '\\') throw parseError(file, lineNo, `invalid escape token '${v}' does not match \` or \\`);
      directives.escape = v;
    } else if (k === 'syntax') {
      directives.syntax = v;
    } else {
      directives.check = parseCheckDirective(v, file, lineNo);
    }
    return true;
  };

  const processLine = (raw: string, lineNo: number, stripLeft: boolean): string => {
    // BuildKit's limit is in bytes; only long lines pay for measuring them.
    if (raw.length * 3 > MAX_LINE && Buffer.byteLength(raw) > MAX_LINE) throw parseError(file, lineNo, `dockerfile line greater than max allowed size of ${MAX_LINE}`);
    let token = trimNewline(raw);
    if (stripLeft) token = trimLeadingWhitespace(token);
    lastWasDirective = directiveCheck(token, lineNo);
    return isComment(token) ? '' : token;
  };

  while (i < lines.length) {
    const raw = lines[i]!;
    let bytes = processLine(raw, i + 1, true);
    if (isComment(raw) && !lastWasDirective) {
      const c = raw.trim().slice(1).trim();
      if (c === '') comments = [];
      else comments.push(c);
    }
    i++;
    const startLine = i;
    const startColumn = trimNewline(raw).length - bytes.length + 1;
    const trimmed = trimContinuation(bytes, directives.escape);
    const line = trimmed.line;
    let end = trimmed.end;
    if (end && line === '') continue;

    let buf = line;
    let emptyContinuation = false;
    while (!end && i < lines.length) {
      const r = lines[i]!;
      bytes = processLine(r, i + 1, false);
      i++;
      if (isComment(r)) continue;
      if (isBlank(bytes)) {
        emptyContinuation = true;
        continue;
      }
      ({ line: bytes, end } = trimContinuation(bytes, directives.escape));
      buf += bytes;
    }
    if (emptyContinuation) {
      warnings.push({
        rule: 'NoEmptyContinuation',
        message: `Empty continuation line found in: ${buf}`,
        file,
        line: i,
        url: 'https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/',
      });
    }
    const node = nodeFromLine(buf, directives.escape, file, startLine, comments);
    node.startLine = startLine;
    node.startColumn = startColumn;

    if (HEREDOC_KEYWORDS.has(node.keyword.toLowerCase()) && buf.includes('<<')) {
      for (const h of heredocsFromLine(buf, file, startLine)) {
        let terminated = false;
        let body = '';
        while (i < lines.length) {
          const r = lines[i]!;
          i++;
          let candidate = trimNewline(r);
          if (h.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === h.name) {
            terminated = true;
            break;
          }
          body += r + '\n';
        }
        if (!terminated) throw parseError(file, startLine, `unterminated heredoc <<${h.name}`, `add a line containing only ${h.name}`, { kind: 'heredoc', name: h.name });
        node.heredocs.push({ ...h, body: h.chomp ? body.replace(/^\t+/gm, '') : body });
      }
    }
    node.endLine = i;
    node.endColumn = trimNewline(lines[i - 1] ?? '').length + 1;
    nodes.push(convert ? convert(node) : node);
    comments = [];
  }
  if (nodes.length === 0) throw parseError(file, Math.max(1, i), 'file with no instructions', 'a Dockerfile needs at least a FROM instruction');
  return { directives, nodes, warnings };
}

/** Finds heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<EOF`) in a RUN/COPY/ADD line. */
export function heredocsFromLine(line: string, file: string, lineNo: number): Array<Omit<Heredoc, 'body'>> {
  let words: string[];
  try {
    words = processWords(line, () => undefined, { rawQuotes: true, rawEscapes: true });
  } catch {
    words = [];
  }
  const out: Array<Omit<Heredoc, 'body'>> = [];
  for (const w of words) {
    const h = parseHeredocWord(w, file, lineNo);
    if (h) out.push(h);
  }
  return out;
}

const HEREDOC_WORD = /^(\d*)<<(-?)([^<]*)$/;

export function parseHeredocWord(src: string, file: string, lineNo: number): Omit<Heredoc, 'body'> | undefined {
  const m = HEREDOC_WORD.exec(src);
  if (!m) return undefined;
  const chomp = m[2] === '-';
  const rest = m[3]!;
  if (rest.length === 0) return undefined;
  let words: string[];
  let raw: string[];
  try {
    words = processWords(rest, () => undefined, { skipUnset: true });
    if (words.length !== 1) return undefined;
    raw = processWords(rest, () => undefined, { skipUnset: true, rawQuotes: true });
  } catch (e) {
    throw parseError(file, lineNo, `invalid heredoc delimiter ${rest}: ${(e as Error).message}`);
  }
  if (raw.length !== words.length) throw parseError(file, lineNo, `internal lexing of heredoc produced inconsistent results: ${rest}`);
  const name = words[0]!;
  const count = (s: string): number => (s.match(/['"]/g) ?? []).length;
  return { name, expand: count(name) === count(raw[0]!), chomp };
}

/** BuildKit's extractBuilderFlags: leading `--flag` words, quotes removed; returns the remaining text. */
function extractFlags(line: string): { rest: string; flags: string[] } {
  const flags: string[] = [];
  const IN_SPACES = 0;
  const IN_WORD = 1;
  const IN_QUOTE = 2;
  let phase = IN_SPACES;
  let word = '';
  let quote = '';
  let blankOK = false;
  const n = line.length;
  for (let pos = 0; pos <= n; pos++) {
    let ch = pos < n ? line[pos]! : '';
    if (phase === IN_SPACES) {
      if (pos === n) break;
      if (isGoSpace(ch.charCodeAt(0))) continue;
      if (ch !== '-' || pos + 1 === n || line[pos + 1] !== '-') return { rest: line.slice(pos), flags };
      phase = IN_WORD;
    }
    if ((phase === IN_WORD || phase === IN_QUOTE) && pos === n) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push(word);
      break;
    }
    if (phase === IN_WORD) {
      if (isGoSpace(ch.charCodeAt(0))) {
        phase = IN_SPACES;
        if (word === '--') return { rest: line.slice(pos), flags };
        if (blankOK || word.length > 0) flags.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === n) continue;
        pos++;
        ch = line[pos]!;
      }
      word += ch;
      continue;
    }
    // IN_QUOTE
    if (ch === quote) {
      phase = IN_WORD;
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === n) {
        phase = IN_WORD;
        continue;
      }
      pos++;
      ch = line[pos]!;
    }
    word += ch;
  }
  return { rest: '', flags };
}

/**
 * BuildKit's parseWords: splits on whitespace honouring quotes and the escape
 * character, keeping both in the words (they are removed at expansion time).
 */
export function splitWordsKeepQuotes(rest: string, escape: string): string[] {
  // Words keep their quotes and escapes, so each one is a slice of `rest`; only an
  // escape character at the very end is dropped.
  const words: string[] = [];
  const esc = escape.charCodeAt(0);
  const n = rest.length;
  let pos = 0;
  while (pos < n) {
    while (pos < n && isGoSpace(rest.charCodeAt(pos))) pos++;
    if (pos >= n) break;
    const start = pos;
    let quote = 0;
    let end = -1;
    for (; pos < n; pos++) {
      const c = rest.charCodeAt(pos);
      if (quote === 0) {
        if (isGoSpace(c)) break;
        if (c === 0x22 || c === 0x27) quote = c;
        else if (c === esc) {
          if (pos + 1 === n) {
            end = pos;
            break;
          }
          pos++;
        }
      } else if (c === quote) {
        quote = 0;
      } else if (c === esc && quote !== 0x27) {
        if (pos + 1 === n) {
          end = pos;
          break;
        }
        pos++;
      }
    }
    const word = rest.slice(start, end >= 0 ? end : pos);
    if (end >= 0) pos = n;
    if (word.length > 0) words.push(word);
  }
  return words;
}

function splitWhitespace(rest: string): string[] {
  if (rest === '') return [];
  return rest.split(WHITESPACE_SPLIT);
}

class NotStringArray extends Error {}

/** JSON form: `[` after leading whitespace and a valid JSON array; non-string elements are an error. */
function parseJSONArray(rest: string): string[] | undefined {
  const t = trimLeadingWhitespace(rest);
  if (!t.startsWith('[')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  for (const s of v) if (typeof s !== 'string') throw new NotStringArray();
  return v as string[];
}

function maybeJSON(rest: string): { args: string[]; json: boolean } {
  if (rest === '') return { args: [], json: false };
  const a = parseJSONArray(rest);
  if (a) return { args: a, json: true };
  return { args: [rest], json: false };
}

function maybeJSONToList(rest: string): { args: string[]; json: boolean } {
  const a = parseJSONArray(rest);
  if (a) return { args: a, json: true };
  return { args: splitWhitespace(rest), json: false };
}

function nameVal(rest: string, key: string, escape: string, file: string, line: number): string[] {
  const words = splitWordsKeepQuotes(rest, escape);
  if (words.length === 0) return [];
  if (!words[0]!.includes('=')) {
    const m = WHITESPACE_SPLIT.exec(rest);
    if (!m) throw parseError(file, line, `${key} must have two arguments`, `write ${key} ${rest}=<value>`);
    return [rest.slice(0, m.index), rest.slice(m.index + m[0].length), ''];
  }
  const out: string[] = [];
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq < 0) throw parseError(file, line, `Syntax error - can't find = in "${w}". Must be of the form: name=value`, undefined, { kind: 'argument', text: w });
    out.push(w.slice(0, eq), w.slice(eq + 1), '=');
  }
  return out;
}

function healthArgs(rest: string): { args: string[]; json: boolean } {
  let sep = 0;
  while (sep < rest.length && !isGoSpace(rest.charCodeAt(sep))) sep++;
  let next = sep;
  while (next < rest.length && isGoSpace(rest.charCodeAt(next))) next++;
  if (sep === 0) return { args: [], json: false };
  const cmd = maybeJSON(rest.slice(next));
  return { args: [rest.slice(0, sep), ...cmd.args], json: cmd.json };
}

export function nodeFromLine(line: string, escape: string, file: string, lineNo: number, comments: string[]): SyntaxNode {
  const trimmed = line.trim();
  const m = WHITESPACE_SPLIT.exec(trimmed);
  const keyword = m ? trimmed.slice(0, m.index) : trimmed;
  let rest = '';
  let flags: string[] = [];
  if (m) {
    const r = extractFlags(trimmed.slice(m.index + m[0].length));
    rest = r.rest.trim();
    flags = r.flags;
  }
  const node: SyntaxNode = {
    keyword, flags, args: [], json: false, original: line, rest, heredocs: [],
    startLine: lineNo, startColumn: 1, endLine: lineNo, endColumn: 1, comments,
  };
  try {
    switch (keyword.toLowerCase()) {
      case 'run': case 'cmd': case 'entrypoint': case 'shell': {
        const r = maybeJSON(rest);
        node.args = r.args;
        node.json = r.json;
        break;
      }
      case 'add': case 'copy': case 'volume': {
        const r = maybeJSONToList(rest);
        node.args = r.args;
        node.json = r.json;
        break;
      }
      case 'from': case 'expose':
        node.args = splitWhitespace(rest);
        break;
      case 'env':
        node.args = nameVal(rest, 'ENV', escape, file, lineNo);
        break;
      case 'label':
        node.args = nameVal(rest, 'LABEL', escape, file, lineNo);
        break;
      case 'arg':
        node.args = splitWordsKeepQuotes(rest, escape);
        break;
      case 'maintainer': case 'user': case 'workdir': case 'stopsignal':
        node.args = rest === '' ? [] : [rest];
        break;
      case 'healthcheck': {
        const r = healthArgs(rest);
        node.args = r.args;
        node.json = r.json;
        break;
      }
      case 'onbuild':
        if (rest !== '') node.args = [nodeFromLine(rest, escape, file, lineNo, [])];
        break;
      default:
        node.args = [''];
    }
  } catch (e) {
    if (e instanceof NotStringArray) {
      throw parseError(file, lineNo, 'when using JSON array syntax, arrays must be comprised of strings only', undefined, { kind: 'arguments' });
    }
    throw e;
  }
  return node;
}
