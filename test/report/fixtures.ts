import type { BuildEvent, StageInfo, StepRef, StepTimings } from '../../src/events/index.js';
import type { Digest } from '../../src/image/digest.js';

const T0 = 1_700_000_000_000;
const D = (c: string): Digest => `sha256:${c.repeat(64).slice(0, 64)}` as Digest;

interface StepSpec {
  stage: number;
  stageName?: string;
  text: string;
  start: number;
  ms: number;
  cached?: boolean;
  layer?: number;
  cpu?: number;
  timings?: StepTimings;
  error?: string;
  logs?: string[];
}

/**
 * A three-stage build on a 2-job machine, times in ms from T0:
 * `deps` and `builder` run side by side from a pulled base; the final stage
 * copies from both, so it waits for `builder`, which ends last.
 */
export function multiStage(opts: { graph?: boolean; timings?: boolean } = {}): BuildEvent[] {
  const specs: StepSpec[] = [
    { stage: 0, stageName: 'deps', text: 'FROM localhost/busybox:latest AS deps', start: 100, ms: 400 },
    { stage: 0, stageName: 'deps', text: 'COPY package.json /src/', start: 500, ms: 30, cached: true },
    { stage: 0, stageName: 'deps', text: 'RUN install-deps', start: 530, ms: 1500, cached: true },
    { stage: 1, stageName: 'builder', text: 'FROM localhost/busybox:latest AS builder', start: 100, ms: 400 },
    { stage: 1, stageName: 'builder', text: 'COPY . /src', start: 500, ms: 600, layer: 2_000_000, ...(opts.timings ? { timings: { hashMs: 350, layerMs: 200 } } : {}) },
    { stage: 1, stageName: 'builder', text: 'RUN make -C /src', start: 1100, ms: 3000, layer: 8_000_000, cpu: 2.5, ...(opts.timings ? { timings: { runMs: 2600, layerMs: 350 } } : {}), logs: ['cc -o app main.c', 'done'] },
    { stage: 2, text: 'FROM localhost/busybox:latest', start: 4110, ms: 5 },
    { stage: 2, text: 'COPY --from=deps /deps /deps', start: 4115, ms: 40, cached: true },
    { stage: 2, text: 'COPY --from=builder /src/app /usr/bin/app', start: 4155, ms: 200, layer: 1_000_000 },
    { stage: 2, text: 'ENV MODE=prod', start: 4355, ms: 1 },
    { stage: 2, text: 'CMD ["app"]', start: 4356, ms: 1 },
  ];
  const graph: StageInfo[] = [
    { index: 0, name: 'deps', deps: [] },
    { index: 1, name: 'builder', deps: [] },
    { index: 2, deps: [0, 1] },
  ];
  const events: BuildEvent[] = [
    { type: 'warning', message: 'FROM uses a mutable tag', file: 'Dockerfile', line: 1, rule: 'X', time: T0 + 20 },
    { type: 'build-start', file: 'Dockerfile', stages: 3, steps: specs.length, ...(opts.graph ? { stageGraph: graph } : {}), time: T0 + 80 },
    { type: 'phase', name: 'resolve', state: 'start', detail: 'localhost/busybox:latest', time: T0 + 110 },
    { type: 'pull-progress', ref: 'localhost/busybox:latest', digest: D('a'), done: 1_000_000, total: 1_000_000, phase: 'done', time: T0 + 480 },
    { type: 'phase', name: 'resolve', state: 'done', detail: 'localhost/busybox:latest', durationMs: 380, time: T0 + 490 },
    ...steps(specs),
    { type: 'phase', name: 'export', state: 'start', detail: 'oci', time: T0 + 4400 },
    { type: 'phase', name: 'export', state: 'done', detail: 'oci', durationMs: 300, time: T0 + 4700 },
    { type: 'phase', name: 'push', state: 'start', detail: 'localhost:5000/app:1', time: T0 + 4700 },
    { type: 'push-progress', ref: 'localhost:5000/app:1', digest: D('b'), done: 8_000_000, total: 8_000_000, phase: 'done', time: T0 + 5400 },
    { type: 'phase', name: 'push', state: 'done', detail: 'localhost:5000/app:1', durationMs: 800, time: T0 + 5500 },
    { type: 'build-done', imageId: D('c'), manifestDigest: D('d'), tags: ['localhost:5000/app:1'], durationMs: 5500, time: T0 + 5500 },
  ];
  return events.sort((a, b) => a.time - b.time);
}

export const T = (ms: number): number => T0 + ms;

export function steps(specs: StepSpec[]): BuildEvent[] {
  const out: BuildEvent[] = [];
  specs.forEach((s, i) => {
    const ref: StepRef = {
      id: `${s.stage}/${i + 1}`,
      stage: s.stage,
      ...(s.stageName ? { stageName: s.stageName } : {}),
      index: i + 1,
      total: specs.length,
      text: s.text,
      line: i + 1,
    };
    out.push({ type: 'step-start', step: ref, time: T0 + s.start });
    for (const [j, line] of (s.logs ?? []).entries()) out.push({ type: 'step-log', step: ref, stream: 'stdout', line, time: T0 + s.start + j + 1 });
    const end = T0 + s.start + s.ms;
    if (s.error) out.push({ type: 'step-error', step: ref, message: s.error, time: end });
    else if (s.cached) out.push({ type: 'step-cached', step: ref, key: D('e'), ...(s.timings ? { timings: s.timings } : {}), time: end });
    else {
      out.push({
        type: 'step-done',
        step: ref,
        key: D('f'),
        durationMs: s.ms,
        ...(s.layer !== undefined ? { layer: { digest: D('1'), size: s.layer, diffID: D('2') } } : {}),
        ...(s.cpu !== undefined ? { usage: { cpuSeconds: s.cpu, peakMemoryBytes: 64 << 20 } } : {}),
        ...(s.timings ? { timings: s.timings } : {}),
        time: end,
      });
    }
  });
  return out;
}

/** A one-stage build whose RUN fails after some output. */
export function failing(): BuildEvent[] {
  return [
    { type: 'build-start', file: 'Dockerfile', stages: 1, steps: 3, time: T0 },
    ...steps([
      { stage: 0, text: 'FROM localhost/busybox:latest', start: 10, ms: 5 },
      { stage: 0, text: 'COPY a.txt /', start: 15, ms: 20, layer: 512 },
      { stage: 0, text: 'RUN ./build.sh && <oops> "quoted" & done', start: 35, ms: 900, error: 'RUN exited with status 2', logs: ['compiling <main>', 'error: \u0007bell & "quotes"'] },
    ]),
  ];
}
