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
 * Why two key inputs give different keys, one line per difference, most
 * specific first: which env var, which input, which op field changed.
 * Empty when they are the same.
 */
export function explainMiss(a: StepKeyInput, b: StepKeyInput): string[] {
  const out: string[] = [];
  if (a.parent !== b.parent) out.push(`parent changed: ${short(a.parent)} → ${short(b.parent)} (an earlier step or the base image differs)`);
  diffValue('op', a.op, b.op, out);
  const names = [...new Set([...Object.keys(a.env), ...Object.keys(b.env)])].sort();
  for (const k of names) {
    const x = a.env[k];
    const y = b.env[k];
    if (x === y) continue;
    if (x === undefined) out.push(`env ${k} added (${JSON.stringify(y)})`);
    else if (y === undefined) out.push(`env ${k} removed (was ${JSON.stringify(x)})`);
    else out.push(`env ${k} changed: ${JSON.stringify(x)} → ${JSON.stringify(y)}`);
  }
  const n = Math.max(a.inputs.length, b.inputs.length);
  for (let i = 0; i < n; i++) {
    const x = a.inputs[i];
    const y = b.inputs[i];
    if (x === y) continue;
    if (x === undefined) out.push(`input #${i + 1} added (${short(y!)})`);
    else if (y === undefined) out.push(`input #${i + 1} removed (was ${short(x)})`);
    else out.push(`input #${i + 1} content changed: ${short(x)} → ${short(y)}`);
  }
  return out;
}

function diffValue(path: string, x: unknown, y: unknown, out: string[]): void {
  if (show(x) === show(y)) return;
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObj(x) && isObj(y)) {
    for (const k of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) diffValue(`${path}.${k}`, x[k], y[k], out);
    return;
  }
  out.push(`${path} changed: ${truncate(show(x))} → ${truncate(show(y))}`);
}

function short(d: string): string {
  return d.startsWith('sha256:') ? d.slice(0, 19) : d;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}
