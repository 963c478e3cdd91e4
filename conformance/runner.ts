/**
 * Runs BuildKit's parser and shell-lexer corpora (in the conformance folder
 * given to `npm run conformance`) against kiln's parser and shell lexer.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { dumpNodes } from '../src/frontend/dump.js';
import { processWord, processWords } from '../src/frontend/shell-lex.js';
import { parseSyntaxTree } from '../src/frontend/syntax-tree.js';

export interface CaseResult {
  name: string;
  pass: boolean;
  expected: string;
  actual: string;
}

export interface SuiteResult {
  passed: number;
  total: number;
  cases: CaseResult[];
}

function errorText(e: unknown): string {
  return `error: ${(e as Error).message}`;
}

/** Parser golden files: every positive dump must match, every negative case must fail. */
export function runParserConformance(dir: string): SuiteResult {
  const cases: CaseResult[] = [];
  const pos = join(dir, 'testfiles');
  for (const name of readdirSync(pos).sort()) {
    const df = readFileSync(join(pos, name, 'Dockerfile'), 'utf8');
    const expected = readFileSync(join(pos, name, 'result'), 'utf8').replace(/\r\n/g, '\n');
    let actual: string;
    try {
      actual = dumpNodes(parseSyntaxTree(df, 'Dockerfile').nodes) + '\n';
    } catch (e) {
      actual = errorText(e);
    }
    cases.push({ name, pass: actual === expected, expected, actual });
  }
  const neg = join(dir, 'testfiles-negative');
  for (const name of readdirSync(neg).sort()) {
    const df = readFileSync(join(neg, name, 'Dockerfile'), 'utf8');
    let actual: string;
    try {
      actual = dumpNodes(parseSyntaxTree(df, 'Dockerfile').nodes);
    } catch (e) {
      actual = errorText(e);
    }
    cases.push({ name: `negative/${name}`, pass: actual.startsWith('error: '), expected: 'error', actual });
  }
  const lineFile = join(dir, 'testfile-line', 'Dockerfile');
  if (existsSync(lineFile)) {
    const expected = '[5,5] [11,12] [17,31]';
    let actual: string;
    try {
      actual = parseSyntaxTree(readFileSync(lineFile, 'utf8'), 'Dockerfile').nodes.map((n) => `[${n.startLine},${n.endLine}]`).join(' ');
    } catch (e) {
      actual = errorText(e);
    }
    cases.push({ name: 'testfile-line', pass: actual === expected, expected, actual });
  }
  return { passed: cases.filter((c) => c.pass).length, total: cases.length, cases };
}

const SHELL_ENV = new Map([['PWD', '/home'], ['SHELL', 'bash'], ['KOREAN', '한국어'], ['NULL', '']]);

/** envVarTest (ProcessWord, A and U lines) and wordsTest (ProcessWords, stateful ENV lines). */
export function runShellConformance(dir: string): SuiteResult {
  const cases: CaseResult[] = [];
  const envLines = readFileSync(join(dir, 'envVarTest'), 'utf8').split('\n');
  envLines.forEach((raw, idx) => {
    if (raw.startsWith('#')) return;
    const line = raw.trim();
    if (line === '') return;
    const fields = line.split('|');
    if (fields.length !== 3) throw new Error(`envVarTest:${idx + 1}: expected 3 fields`);
    const [platform, input, expected] = fields.map((f) => f.trim()) as [string, string, string];
    if (platform === 'W') return;
    let actual: string;
    try {
      actual = processWord(input, SHELL_ENV);
    } catch (e) {
      actual = expected === 'error' ? 'error' : errorText(e);
    }
    cases.push({ name: `envVarTest:${idx + 1} ${input}`, pass: actual === expected, expected, actual });
  });
  const env = new Map<string, string>();
  const wordLines = readFileSync(join(dir, 'wordsTest'), 'utf8').split('\n');
  if (wordLines[wordLines.length - 1] === '') wordLines.pop();
  wordLines.forEach((raw, idx) => {
    if (raw.startsWith('#')) return;
    if (raw.startsWith('ENV ')) {
      const def = raw.slice(4).replace(/^ +/, '');
      const eq = def.indexOf('=');
      env.set(def.slice(0, eq), def.slice(eq + 1));
      return;
    }
    const fields = raw.split('|');
    if (fields.length !== 2) throw new Error(`wordsTest:${idx + 1}: expected 2 fields`);
    const input = fields[0]!.trim();
    const expected = fields[1]!.replace(/^ +/, '').split(',');
    let actual: string[];
    try {
      actual = processWords(input, env);
    } catch {
      actual = ['error'];
    }
    const pass = actual.length === expected.length && actual.every((w, i) => w === expected[i]);
    cases.push({ name: `wordsTest:${idx + 1} ${input}`, pass, expected: JSON.stringify(expected), actual: JSON.stringify(actual) });
  });
  return { passed: cases.filter((c) => c.pass).length, total: cases.length, cases };
}

/** The corpora folder `npm run conformance` was given (scripts/conformance.mjs sets it). */
export function corporaDir(): string {
  const dir = process.env['KILN_CONFORMANCE_DIR'];
  if (!dir) throw new Error('KILN_CONFORMANCE_DIR is not set: run these suites with `npm run conformance [DIR]`');
  return dir;
}
