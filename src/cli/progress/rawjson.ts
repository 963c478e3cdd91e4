import { createHash } from 'node:crypto';
import type { BuildEvent, StepRef } from '../../events/index.js';
import { labelled } from './step-label.js';

/**
 * `--progress rawjson`: BuildKit's SolveStatus as buildx prints it, one JSON
 * object per line with `vertexes`, `statuses` and `logs`. Vertex digests are
 * derived from the step id, so tools that group by vertex see one per step.
 */
export interface RawVertex {
  digest: string;
  name: string;
  started?: string;
  completed?: string;
  cached?: boolean;
  error?: string;
}
export interface RawStatus {
  id: string;
  vertex: string;
  name: string;
  total: number;
  current: number;
  timestamp: string;
}
export interface RawLog {
  vertex: string;
  stream: 1 | 2;
  /** Base64 of the bytes, as BuildKit encodes them. */
  data: string;
  timestamp: string;
}
export interface SolveStatus {
  vertexes?: RawVertex[];
  statuses?: RawStatus[];
  logs?: RawLog[];
}

const vertexDigest = (key: string): string => `sha256:${createHash('sha256').update(`kiln-vertex:${key}`).digest('hex')}`;
const iso = (t: number): string => new Date(t).toISOString();
const stepName = (s: StepRef): string => labelled(s, s.text);

/** The SolveStatus an event stands for, or undefined for events BuildKit has no record of. */
export function toSolveStatus(e: BuildEvent, started: Map<string, number>): SolveStatus | undefined {
  switch (e.type) {
    case 'step-start':
      started.set(e.step.id, e.time);
      return { vertexes: [{ digest: vertexDigest(e.step.id), name: stepName(e.step), started: iso(e.time) }] };
    case 'step-cached':
      return { vertexes: [{ digest: vertexDigest(e.step.id), name: stepName(e.step), started: iso(started.get(e.step.id) ?? e.time), completed: iso(e.time), cached: true }] };
    case 'step-done':
      return { vertexes: [{ digest: vertexDigest(e.step.id), name: stepName(e.step), started: iso(started.get(e.step.id) ?? e.time - e.durationMs), completed: iso(e.time) }] };
    case 'step-error':
      return { vertexes: [{ digest: vertexDigest(e.step.id), name: stepName(e.step), started: iso(started.get(e.step.id) ?? e.time), completed: iso(e.time), error: e.message }] };
    case 'step-log':
      return { logs: [{ vertex: vertexDigest(e.step.id), stream: e.stream === 'stdout' ? 1 : 2, data: Buffer.from(`${e.line}\n`).toString('base64'), timestamp: iso(e.time) }] };
    case 'pull-progress':
    case 'push-progress': {
      const vertex = vertexDigest(`${e.type}:${e.ref}`);
      const verb = e.type === 'pull-progress' ? 'pulling' : 'pushing';
      return {
        vertexes: [{ digest: vertex, name: `${e.type === 'pull-progress' ? 'pull' : 'push'} ${e.ref}`, started: iso(e.time) }],
        statuses: [{ id: `${verb} ${e.digest}`, vertex, name: `${verb} ${e.digest}`, total: e.total, current: e.done, timestamp: iso(e.time) }],
      };
    }
    case 'phase': {
      const digest = vertexDigest(`phase:${e.name}`);
      const name = e.detail ? `${e.name} ${e.detail}` : e.name;
      return { vertexes: [{ digest, name, started: iso(e.state === 'done' && e.durationMs !== undefined ? e.time - e.durationMs : e.time), ...(e.state === 'done' ? { completed: iso(e.time) } : {}) }] };
    }
    default:
      return undefined;
  }
}
