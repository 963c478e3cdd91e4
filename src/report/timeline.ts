import type { BuildEvent, StageInfo, StepRef, StepTimings } from '../events/index.js';

/**
 * Where wall-clock time can go in a build. Each step's duration is split into
 * these; the critical-path breakdown adds the time outside steps (setup,
 * commit, export, push) and the gaps, so it sums to the build's total.
 */
export type Category = 'setup' | 'resolve' | 'context' | 'run' | 'layer' | 'copy' | 'cache' | 'meta' | 'commit' | 'export' | 'push' | 'wait';

export interface CategoryInfo {
  id: Category;
  label: string;
  description: string;
}

/** In the order they are shown in legends. */
export const CATEGORIES: readonly CategoryInfo[] = [
  { id: 'setup', label: 'setup', description: 'reading and planning the Dockerfile, opening the store' },
  { id: 'resolve', label: 'pull / resolve', description: 'FROM: finding the base image in the store or pulling it' },
  { id: 'context', label: 'context hashing', description: 'hashing the files COPY/ADD read, before the cache lookup' },
  { id: 'run', label: 'RUN', description: 'RUN commands in the sandbox' },
  { id: 'layer', label: 'layer write', description: 'diffing, tarring, compressing and storing layers' },
  { id: 'copy', label: 'COPY / ADD', description: 'COPY/ADD on a cache miss: reading the sources and writing the layer (hashing is counted apart)' },
  { id: 'cache', label: 'cache lookup', description: 'computing the cache key and finding the record' },
  { id: 'meta', label: 'metadata', description: 'ENV, LABEL, ARG and other config-only steps' },
  { id: 'commit', label: 'commit', description: 'writing the image config and manifest, tagging' },
  { id: 'export', label: 'export', description: 'writing --output archives and directories' },
  { id: 'push', label: 'push', description: 'uploading to the registry' },
  { id: 'wait', label: 'waiting', description: 'between steps on the critical path: scheduling, a job slot, a dependency' },
];

export type StepStatus = 'done' | 'cached' | 'error' | 'unfinished';

export interface Segment {
  category: Category;
  ms: number;
}

/** One step as a bar on its stage's lane. Times are ms since the model's origin. */
export interface StepBar {
  /** The step's 1-based position in the build, unique within it. */
  index: number;
  stage: number;
  stageName?: string;
  text: string;
  /** The instruction keyword, upper-case (`RUN`, `COPY`, …). */
  kind: string;
  line: number;
  start: number;
  end: number;
  status: StepStatus;
  /** Sums to `end - start`. */
  segments: Segment[];
  layerSize?: number;
  cpuSeconds?: number;
  peakMemoryBytes?: number;
  missReason?: string;
  error?: string;
  logLines: number;
  /** The last lines of output, kept for failed steps so the report shows why. */
  logTail: string[];
  critical: boolean;
}

export interface Lane {
  stage: number;
  name?: string;
  label: string;
  /** Stages this one waits for; from the build's stage graph, else read from FROM/--from in the step texts. */
  deps: number[];
  depsFrom: 'graph' | 'text' | 'none';
  start: number;
  end: number;
  steps: StepBar[];
}

export interface PhaseBar {
  name: 'setup' | 'resolve' | 'commit' | 'export' | 'push';
  detail?: string;
  start: number;
  end: number;
}

/** Why a stage on the critical path started when it did. */
export interface CriticalLink {
  from: number;
  to: number;
  /** `dep`: it waited for a stage it depends on; `slot`: for a job slot (or, without a stage graph, just after that stage ended). */
  kind: 'dep' | 'slot';
  gapMs: number;
}

export interface CategoryTotal {
  category: Category;
  ms: number;
}

export interface ReportWarning {
  message: string;
  where?: string;
}

export interface TimelineModel {
  file?: string;
  /** Epoch ms of time 0. */
  origin: number;
  totalMs: number;
  outcome:
    | { state: 'ok'; imageId: string; manifestDigest: string; tags: string[] }
    | { state: 'failed'; error: string; stepIndex?: number }
    | { state: 'unfinished' };
  lanes: Lane[];
  phases: PhaseBar[];
  critical: {
    /** Step indexes, in time order. */
    steps: number[];
    links: CriticalLink[];
    /** Wall-clock time along the critical path by category; sums to `totalMs`. */
    breakdown: CategoryTotal[];
  };
  /** Work per category summed over every step and phase; exceeds `totalMs` when stages ran in parallel. */
  totals: CategoryTotal[];
  stats: {
    steps: number;
    cached: number;
    executed: number;
    failed: number;
    layerBytes: number;
    pulledBytes: number;
    pushedBytes: number;
    cpuSeconds: number;
    peakMemoryBytes?: number;
    warnings: ReportWarning[];
  };
}

const LOG_TAIL = 12;
/** Clock jitter between one stage's last event and the next stage's first: events are stamped with Date.now(). */
const EPS_MS = 5;

/** A step while its events are read; it becomes a StepBar, so what it carries over is typed by StepBar. */
interface Pending extends Pick<StepBar, 'status' | 'layerSize' | 'cpuSeconds' | 'peakMemoryBytes' | 'missReason' | 'error' | 'logLines' | 'logTail'> {
  ref: StepRef;
  /** Epoch ms, unlike StepBar's times. */
  start: number;
  end?: number;
  timings?: StepTimings;
}

/** Turns a build's event stream (complete, or cut short by a failure) into what the report draws. */
export function buildTimeline(events: readonly BuildEvent[]): TimelineModel {
  const sorted = [...events].sort((a, b) => a.time - b.time);
  const done = sorted.find((e): e is Extract<BuildEvent, { type: 'build-done' }> => e.type === 'build-done');
  const startEvent = sorted.find((e): e is Extract<BuildEvent, { type: 'build-start' }> => e.type === 'build-start');
  const firstTime = sorted[0]?.time ?? 0;
  const lastTime = sorted[sorted.length - 1]?.time ?? firstTime;
  // build-done's duration counts from before parsing, which no event marks
  const origin = done ? Math.min(firstTime, done.time - done.durationMs) : firstTime;
  const endTime = Math.max(lastTime, done?.time ?? lastTime);
  const rel = (t: number): number => t - origin;

  const steps = new Map<number, Pending>();
  const openPhases = new Map<string, { start: number; detail?: string }>();
  const phases: PhaseBar[] = [];
  const pulled = new Map<string, number>();
  const pushed = new Map<string, number>();
  const warnings: ReportWarning[] = [];
  let failure: { error: string; stepIndex?: number } | undefined;

  const pending = (ref: StepRef, time: number): Pending => {
    let p = steps.get(ref.index);
    if (!p) {
      p = { ref, start: time, status: 'unfinished', logLines: 0, logTail: [] };
      steps.set(ref.index, p);
    }
    return p;
  };

  for (const e of sorted) {
    switch (e.type) {
      case 'step-start':
        pending(e.step, e.time).start = e.time;
        break;
      case 'step-cached': {
        const p = pending(e.step, e.time);
        p.end = e.time;
        p.status = 'cached';
        if (e.timings) p.timings = e.timings;
        break;
      }
      case 'step-log': {
        const p = pending(e.step, e.time);
        p.logLines++;
        p.logTail.push(e.line);
        if (p.logTail.length > LOG_TAIL) p.logTail.shift();
        break;
      }
      case 'step-done': {
        const p = pending(e.step, e.time - e.durationMs);
        p.end = e.time;
        p.status = 'done';
        if (e.layer) p.layerSize = e.layer.size;
        if (e.usage) {
          p.cpuSeconds = e.usage.cpuSeconds;
          if (e.usage.peakMemoryBytes !== undefined) p.peakMemoryBytes = e.usage.peakMemoryBytes;
        }
        if (e.missReason) p.missReason = e.missReason;
        if (e.timings) p.timings = e.timings;
        break;
      }
      case 'step-error': {
        const p = pending(e.step, e.time);
        p.end = e.time;
        p.status = 'error';
        p.error = e.message;
        failure ??= { error: e.message, stepIndex: e.step.index };
        break;
      }
      case 'phase': {
        const k = `${e.name}\u0000${e.detail ?? ''}`;
        if (e.state === 'start') {
          openPhases.set(k, { start: e.time, ...(e.detail !== undefined ? { detail: e.detail } : {}) });
        } else {
          const open = openPhases.get(k);
          openPhases.delete(k);
          const start = open?.start ?? e.time - (e.durationMs ?? 0);
          phases.push({ name: e.name, ...(e.detail !== undefined ? { detail: e.detail } : {}), start: rel(start), end: rel(e.time) });
        }
        break;
      }
      case 'pull-progress':
        if (e.phase === 'done') pulled.set(e.digest, e.total);
        break;
      case 'push-progress':
        if (e.phase === 'done') pushed.set(`${e.ref} ${e.digest}`, e.total);
        break;
      case 'warning':
        warnings.push({ message: e.message, ...(e.file && e.line ? { where: `${e.file}:${e.line}` } : {}) });
        break;
      default:
        break;
    }
  }
  // a phase cut short by a failure still took the time until the end
  for (const [k, open] of openPhases) {
    const name = k.slice(0, k.indexOf('\u0000')) as PhaseBar['name'];
    phases.push({ name, ...(open.detail !== undefined ? { detail: open.detail } : {}), start: rel(open.start), end: rel(endTime) });
  }

  const bars: StepBar[] = [...steps.values()]
    .sort((a, b) => a.ref.index - b.ref.index)
    .map((p) => toBar(p, rel, rel(endTime)));

  const graph = startEvent?.stageGraph;
  const lanes = makeLanes(bars, graph);
  const totalMs = Math.max(0, rel(endTime));

  if (startEvent && rel(startEvent.time) > 0) phases.unshift({ name: 'setup', start: 0, end: rel(startEvent.time) });
  const lastStepEnd = bars.reduce((m, b) => Math.max(m, b.end), -Infinity);
  if (done && Number.isFinite(lastStepEnd)) {
    const after = phases.filter((p) => (p.name === 'export' || p.name === 'push') && p.start >= lastStepEnd - EPS_MS);
    const commitEnd = after.reduce((m, p) => Math.min(m, p.start), rel(done.time));
    if (commitEnd > lastStepEnd) phases.push({ name: 'commit', start: lastStepEnd, end: commitEnd });
  }
  phases.sort((a, b) => a.start - b.start || a.end - b.end);

  const critical = criticalPath(lanes, startEvent ? rel(startEvent.time) : 0);
  const onPath = new Set(critical.steps);
  for (const b of bars) b.critical = onPath.has(b.index);

  const outcome: TimelineModel['outcome'] = done
    ? { state: 'ok', imageId: done.imageId, manifestDigest: done.manifestDigest, tags: done.tags }
    : failure
      ? { state: 'failed', ...failure }
      : { state: 'unfinished' };

  const layerBytes = bars.reduce((n, b) => n + (b.layerSize ?? 0), 0);
  const cpuSeconds = bars.reduce((n, b) => n + (b.cpuSeconds ?? 0), 0);
  const peak = bars.reduce((m, b) => Math.max(m, b.peakMemoryBytes ?? 0), 0);

  return {
    ...(startEvent ? { file: startEvent.file } : {}),
    origin,
    totalMs,
    outcome,
    lanes,
    phases,
    critical: {
      steps: critical.steps,
      links: critical.links,
      breakdown: wallBreakdown(bars, critical.steps, phases, startEvent ? rel(startEvent.time) : 0, totalMs),
    },
    totals: workTotals(bars, phases),
    stats: {
      steps: bars.length,
      cached: bars.filter((b) => b.status === 'cached').length,
      executed: bars.filter((b) => b.status === 'done' && (b.layerSize !== undefined || b.cpuSeconds !== undefined)).length,
      failed: bars.filter((b) => b.status === 'error').length,
      layerBytes,
      pulledBytes: sum(pulled.values()),
      pushedBytes: sum(pushed.values()),
      cpuSeconds,
      ...(peak > 0 ? { peakMemoryBytes: peak } : {}),
      warnings,
    },
  };
}

function toBar(p: Pending, rel: (t: number) => number, endRel: number): StepBar {
  const start = rel(p.start);
  const end = Math.max(start, p.end === undefined ? endRel : rel(p.end));
  const kind = keyword(p.ref.text);
  const bar: StepBar = {
    index: p.ref.index,
    stage: p.ref.stage,
    text: p.ref.text,
    kind,
    line: p.ref.line,
    start,
    end,
    status: p.status,
    segments: split(kind, p.status, end - start, p.timings, p.layerSize !== undefined || p.cpuSeconds !== undefined),
    logLines: p.logLines,
    logTail: p.status === 'error' || p.status === 'unfinished' ? p.logTail : [],
    critical: false,
  };
  if (p.ref.stageName !== undefined) bar.stageName = p.ref.stageName;
  if (p.layerSize !== undefined) bar.layerSize = p.layerSize;
  if (p.cpuSeconds !== undefined) bar.cpuSeconds = p.cpuSeconds;
  if (p.peakMemoryBytes !== undefined) bar.peakMemoryBytes = p.peakMemoryBytes;
  if (p.missReason !== undefined) bar.missReason = p.missReason;
  if (p.error !== undefined) bar.error = p.error;
  return bar;
}

/** The instruction keyword, upper-case: step texts keep the user's spelling (`run`, `Copy`). */
function keyword(text: string): string {
  const m = /^\s*([A-Za-z]+)/.exec(text);
  return m ? m[1]!.toUpperCase() : '?';
}

/**
 * A step's duration by category: measured parts first, the rest to what the
 * instruction kind mostly spends time on, so the parts always add up.
 */
export function split(kind: string, status: StepStatus, ms: number, timings: StepTimings | undefined, executed: boolean): Segment[] {
  if (kind === 'FROM') return [{ category: 'resolve', ms }];
  const fsKind = kind === 'RUN' || kind === 'COPY' || kind === 'ADD' || kind === 'WORKDIR';
  let rest: Category;
  if (status === 'cached') rest = (kind === 'COPY' || kind === 'ADD') && timings?.hashMs === undefined ? 'context' : 'cache';
  else if (!fsKind || (kind === 'WORKDIR' && !executed)) rest = 'meta';
  else if (kind === 'RUN') rest = 'run';
  else if (kind === 'WORKDIR') rest = 'layer';
  else rest = 'copy';

  const measured: Segment[] = [];
  if (timings?.hashMs) measured.push({ category: 'context', ms: timings.hashMs });
  if (timings?.runMs && status !== 'cached') measured.push({ category: 'run', ms: timings.runMs });
  if (timings?.layerMs && status !== 'cached') measured.push({ category: 'layer', ms: timings.layerMs });
  const m = sum(measured.map((s) => s.ms));
  // measured parts may overshoot the wall time by clock granularity; scale them into it
  const scale = m > ms && m > 0 ? ms / m : 1;
  const out: Segment[] = measured.map((s) => ({ category: s.category, ms: s.ms * scale }));
  const left = ms - Math.min(m, ms);
  if (left > 0 || out.length === 0) out.push({ category: rest, ms: left });
  return merge(out);
}

function merge(segs: Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segs) {
    const same = out.find((o) => o.category === s.category);
    if (same) same.ms += s.ms;
    else out.push({ ...s });
  }
  return out;
}

function makeLanes(bars: StepBar[], graph: StageInfo[] | undefined): Lane[] {
  const byStage = new Map<number, StepBar[]>();
  for (const g of graph ?? []) byStage.set(g.index, []);
  for (const b of bars) {
    const l = byStage.get(b.stage);
    if (l) l.push(b);
    else byStage.set(b.stage, [b]);
  }
  const names = new Map<number, string>();
  for (const g of graph ?? []) if (g.name !== undefined) names.set(g.index, g.name);
  // without a stage graph, the names come from the steps (FROM … AS name)
  for (const b of bars) if (b.stageName !== undefined && !names.has(b.stage)) names.set(b.stage, b.stageName);
  const nameToIndex = new Map<string, number>();
  for (const [i, n] of names) nameToIndex.set(n.toLowerCase(), i);

  const lanes: Lane[] = [];
  for (const [stage, steps] of [...byStage].sort((a, b) => a[0] - b[0])) {
    const name = names.get(stage);
    const g = graph?.find((s) => s.index === stage);
    let deps: number[];
    let depsFrom: Lane['depsFrom'];
    if (g) {
      deps = [...g.deps];
      depsFrom = 'graph';
    } else {
      deps = textDeps(steps, nameToIndex, stage);
      depsFrom = deps.length ? 'text' : 'none';
    }
    lanes.push({
      stage,
      ...(name !== undefined ? { name } : {}),
      label: name !== undefined ? `${name}` : `stage ${stage}`,
      deps,
      depsFrom,
      start: steps.length ? Math.min(...steps.map((s) => s.start)) : 0,
      end: steps.length ? Math.max(...steps.map((s) => s.end)) : 0,
      steps,
    });
  }
  return lanes;
}

/** Stages named by FROM <stage>, COPY --from=<stage> and RUN --mount=…,from=<stage> in a lane's steps. */
function textDeps(steps: StepBar[], nameToIndex: Map<string, number>, self: number): number[] {
  const refs: string[] = [];
  for (const s of steps) {
    if (s.kind === 'FROM') {
      const word = s.text
        .trim()
        .split(/\s+/)
        .slice(1)
        .find((w) => !w.startsWith('--'));
      if (word) refs.push(word);
    }
    for (const m of s.text.matchAll(/(?:^|[\s,])(?:--)?from=("?)([^\s,"]+)\1/g)) refs.push(m[2]!);
  }
  const deps = new Set<number>();
  for (const r of refs) {
    const i = /^\d+$/.test(r) ? Number(r) : nameToIndex.get(r.toLowerCase());
    if (i !== undefined && i !== self) deps.add(i);
  }
  return [...deps].sort((a, b) => a - b);
}

/**
 * Walks back from the step that ended last: a stage's steps run one after
 * another, so the whole stage is on the path; before it comes the stage it
 * waited for — the dependency that ended last, or, when the stage still
 * started noticeably later than that, the stage whose end freed its job slot.
 */
function criticalPath(lanes: Lane[], buildStart: number): { steps: number[]; links: CriticalLink[] } {
  const withSteps = lanes.filter((l) => l.steps.length);
  if (!withSteps.length) return { steps: [], links: [] };
  let lane = withSteps.reduce((best, l) => (l.end > best.end || (l.end === best.end && l.stage > best.stage) ? l : best));
  const total = Math.max(...withSteps.map((l) => l.end));
  const slack = Math.max(50, total * 0.02);
  const visited = new Set<number>();
  const chain: Lane[] = [];
  const links: CriticalLink[] = [];
  for (;;) {
    visited.add(lane.stage);
    chain.push(lane);
    const start = lane.start;
    const ended = (l: Lane) => !visited.has(l.stage) && l.steps.length > 0 && l.end <= start + EPS_MS;
    const deps = withSteps.filter((l) => lane.deps.includes(l.stage) && ended(l));
    let pred = deps.reduce<Lane | undefined>((best, l) => (!best || l.end > best.end ? l : best), undefined);
    let kind: CriticalLink['kind'] = 'dep';
    const waitedFrom = pred ? pred.end : buildStart;
    if (start - waitedFrom > slack) {
      const other = withSteps.filter((l) => ended(l) && l.end > waitedFrom).reduce<Lane | undefined>((best, l) => (!best || l.end > best.end ? l : best), undefined);
      if (other) {
        pred = other;
        kind = lane.deps.includes(other.stage) ? 'dep' : 'slot';
      }
    }
    if (!pred) break;
    links.push({ from: pred.stage, to: lane.stage, kind, gapMs: Math.max(0, start - pred.end) });
    lane = pred;
  }
  const steps = chain
    .reverse()
    .flatMap((l) => l.steps)
    .sort((a, b) => a.start - b.start || a.index - b.index)
    .map((s) => s.index);
  return { steps, links: links.reverse() };
}

/** Wall-clock time from 0 to `totalMs`, walked along the critical path; what no step or phase covers is waiting. */
function wallBreakdown(bars: StepBar[], path: number[], phases: PhaseBar[], buildStart: number, totalMs: number): CategoryTotal[] {
  const acc = new Map<Category, number>();
  const add = (c: Category, ms: number) => {
    if (ms > 0) acc.set(c, (acc.get(c) ?? 0) + ms);
  };
  let t = 0;
  const advanceTo = (until: number, c: Category) => {
    if (until > t) {
      add(c, until - t);
      t = until;
    }
  };
  advanceTo(Math.min(buildStart, totalMs), 'setup');
  const byIndex = new Map(bars.map((b) => [b.index, b]));
  for (const i of path) {
    const b = byIndex.get(i)!;
    advanceTo(b.start, 'wait');
    // a step that starts before t (clock jitter) only counts from t
    const dur = b.end - b.start;
    const from = Math.max(t, b.start);
    const ratio = dur > 0 ? (b.end - from) / dur : 0;
    for (const s of b.segments) add(s.category, s.ms * ratio);
    t = Math.max(t, b.end);
  }
  for (const p of phases.filter((p) => (p.name === 'export' || p.name === 'push' || p.name === 'commit') && p.end > t)) {
    advanceTo(p.start, 'commit');
    advanceTo(p.end, p.name === 'push' ? 'push' : p.name === 'export' ? 'export' : 'commit');
  }
  // after the last step comes the commit, unless the build stopped there
  const committed = phases.some((p) => p.name === 'commit' || p.name === 'export' || p.name === 'push');
  advanceTo(totalMs, path.length && committed ? 'commit' : 'wait');
  return ordered(acc);
}

/** Work per category: every step's parts plus the phases outside steps (pulls inside FROM steps are already counted there). */
function workTotals(bars: StepBar[], phases: PhaseBar[]): CategoryTotal[] {
  const acc = new Map<Category, number>();
  for (const b of bars) for (const s of b.segments) acc.set(s.category, (acc.get(s.category) ?? 0) + s.ms);
  for (const p of phases) {
    if (p.name === 'setup' || p.name === 'commit' || p.name === 'export' || p.name === 'push') {
      acc.set(p.name, (acc.get(p.name) ?? 0) + (p.end - p.start));
    }
  }
  return ordered(acc);
}

function ordered(acc: Map<Category, number>): CategoryTotal[] {
  return CATEGORIES.filter((c) => (acc.get(c.id) ?? 0) > 0).map((c) => ({ category: c.id, ms: acc.get(c.id)! }));
}

function sum(xs: Iterable<number>): number {
  let n = 0;
  for (const x of xs) n += x;
  return n;
}
