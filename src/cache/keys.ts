import { sha256, type Digest } from '../image/digest.js';
import { canonicalJSON } from '../image/canonical-json.js';

/** Everything a step's result depends on; equal inputs ⇒ equal key. */
export interface StepKeyInput {
  /** The previous step's key, or the base image's manifest digest for the first step. */
  parent: string;
  /** The instruction after expansion, as JSON-compatible data. */
  op: unknown;
  /** Build args and env the step can see (proxy args excluded by the caller: they never split the cache). */
  env: Record<string, string>;
  /** Content digests the step reads (COPY/ADD selection digests), in instruction order. */
  inputs: string[];
  /** Not part of the key: the instruction as written, so --explain-cache can quote it. */
  text?: string;
  /** Not part of the key: per context path, a short digest of what the step read, so --explain-cache can name the file. */
  files?: Record<string, string>;
}

/** Cache keys hash the same canonical JSON as every other document kiln digests. */
export { canonicalJSON as canonicalJson } from '../image/canonical-json.js';

/** A value as explain-cache prints it; an absent one shows as null. */
const show = (v: unknown): string => (v === undefined ? 'null' : canonicalJSON(v));

/** The inputs of one step's key, as kept per Dockerfile position to explain a miss. */
export type KeyParts = StepKeyInput;

export function stepCacheKey(input: StepKeyInput): Digest {
  return sha256(canonicalJSON({ v: 1, parent: input.parent, op: input.op, env: input.env, inputs: input.inputs }));
}

/**
 * Why two key inputs give different keys, one line per difference, in the
 * user's terms: the instruction, the build arg, the file that changed.
 * Empty when they are the same.
 */
export function explainMiss(a: StepKeyInput, b: StepKeyInput): string[] {
  const out: string[] = [];
  if (show(a.op) === show(b.op)) {
    // a comment or spacing never changes the key
  } else if (a.text !== undefined && b.text !== undefined && a.text !== b.text) {
    out.push(`instruction changed: ${JSON.stringify(a.text)} → ${JSON.stringify(b.text)}`);
  } else {
    // same text, different meaning: a variable it uses (ENV or ARG) expanded differently
    const ops: string[] = [];
    diffValue('', a.op, b.op, ops);
    for (const o of ops) out.push(`expanded instruction changed: ${o}`);
  }
  const names = [...new Set([...Object.keys(a.env), ...Object.keys(b.env)])].sort();
  for (const k of names) {
    const x = a.env[k];
    const y = b.env[k];
    if (x === y) continue;
    if (x === undefined) out.push(`build arg ${k} added (${JSON.stringify(y)})`);
    else if (y === undefined) out.push(`build arg ${k} removed (was ${JSON.stringify(x)})`);
    else out.push(`build arg ${k} changed: ${JSON.stringify(x)} → ${JSON.stringify(y)}`);
  }
  if (a.inputs.join('\n') !== b.inputs.join('\n')) out.push(...explainInputs(a, b));
  if (a.parent !== b.parent && out.length === 0) out.push('an earlier step or the base image changed');
  return out;
}

/** Files by name when both builds listed them, else what kind of input changed. */
function explainInputs(a: StepKeyInput, b: StepKeyInput): string[] {
  if (a.files && b.files) {
    const changed: string[] = [];
    for (const p of [...new Set([...Object.keys(a.files), ...Object.keys(b.files)])].sort()) {
      const x = a.files[p];
      const y = b.files[p];
      if (x === y) continue;
      changed.push(x === undefined ? `file ${p} added` : y === undefined ? `file ${p} removed` : `file ${p} changed`);
    }
    if (changed.length) {
      const shown = changed.slice(0, MAX_NAMED_FILES);
      if (changed.length > shown.length) shown.push(`and ${changed.length - shown.length} more files`);
      return shown;
    }
  }
  const out: string[] = [];
  const n = Math.max(a.inputs.length, b.inputs.length);
  for (let i = 0; i < n; i++) {
    const x = a.inputs[i];
    const y = b.inputs[i];
    if (x === y) continue;
    const what = inputKind(y ?? x!);
    out.push(`${what} changed`);
  }
  return out;
}

const MAX_NAMED_FILES = 10;

function inputKind(input: string): string {
  if (input.startsWith('from:')) return 'the --from stage or image';
  if (input.startsWith('bind:')) return `the bind mount at ${input.split(':')[1]}`;
  if (input.startsWith('hosts:')) return 'the --add-host entries';
  if (input.startsWith('shm:')) return 'the --shm-size';
  return 'the files it copies';
}

function diffValue(path: string, x: unknown, y: unknown, out: string[]): void {
  if (show(x) === show(y)) return;
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(x) && isObj(y)) {
    for (const k of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) diffValue(path ? `${path}.${k}` : k, x[k], y[k], out);
    return;
  }
  out.push(`${path || 'instruction'}: ${truncate(show(x))} → ${truncate(show(y))}`);
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
