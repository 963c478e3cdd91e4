import { describe, expect, it } from 'vitest';
import { buildTimeline, split } from '../../src/report/timeline.js';
import type { BuildEvent } from '../../src/events/index.js';
import { failing, multiStage, steps, T } from './fixtures.js';

const sumMs = (xs: Array<{ ms: number }>) => xs.reduce((n, x) => n + x.ms, 0);
const ms = (xs: Array<{ category: string; ms: number }>, c: string) => xs.find((x) => x.category === c)?.ms ?? 0;

describe('build report: timeline model', () => {
  it('puts each stage on its own lane, in stage order, with its steps in build order', () => {
    const m = buildTimeline(multiStage({ graph: true }));
    expect(m.lanes.map((l) => [l.stage, l.label, l.steps.map((s) => s.index)])).toEqual([
      [0, 'deps', [1, 2, 3]],
      [1, 'builder', [4, 5, 6]],
      [2, 'stage 2', [7, 8, 9, 10, 11]],
    ]);
    expect(m.lanes[2]!.deps).toEqual([0, 1]);
    expect(m.lanes[2]!.depsFrom).toBe('graph');
    // build-done's duration starts the clock before build-start: the 80 ms before it are setup
    expect(m.totalMs).toBe(5500);
    const run = m.lanes[1]!.steps[2]!;
    expect(run).toMatchObject({ text: 'RUN make -C /src', kind: 'RUN', start: 1100, end: 4100, status: 'done', layerSize: 8_000_000, cpuSeconds: 2.5, logLines: 2 });
  });

  it('marks cached steps and counts them', () => {
    const m = buildTimeline(multiStage({ graph: true }));
    const all = m.lanes.flatMap((l) => l.steps);
    expect(all.filter((s) => s.status === 'cached').map((s) => s.text)).toEqual(['COPY package.json /src/', 'RUN install-deps', 'COPY --from=deps /deps /deps']);
    expect(m.stats).toMatchObject({ steps: 11, cached: 3, executed: 3, failed: 0, layerBytes: 11_000_000, pulledBytes: 1_000_000, pushedBytes: 8_000_000, cpuSeconds: 2.5 });
    expect(m.stats.warnings).toEqual([{ message: 'FROM uses a mutable tag', where: 'Dockerfile:1' }]);
    expect(m.outcome).toEqual({ state: 'ok', imageId: expect.stringMatching(/^sha256:c/), manifestDigest: expect.stringMatching(/^sha256:d/), tags: ['localhost:5000/app:1'] });
  });

  it('follows the critical path through the dependency that ended last', () => {
    for (const graph of [true, false]) {
      const m = buildTimeline(multiStage({ graph }));
      // builder ended after deps, so the final stage waited for builder; deps is off the path
      expect(m.critical.steps).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
      expect(m.critical.links).toEqual([{ from: 1, to: 2, kind: 'dep', gapMs: 10 }]);
      const crit = m.lanes.flatMap((l) => l.steps).filter((s) => s.critical).map((s) => s.index);
      expect(crit).toEqual(m.critical.steps);
    }
    // without a stage graph the dependencies come from FROM/--from in the step texts
    const textual = buildTimeline(multiStage());
    expect(textual.lanes[2]!.deps).toEqual([0, 1]);
    expect(textual.lanes[2]!.depsFrom).toBe('text');
  });

  it('splits wall time along the critical path into categories that add up to the total', () => {
    const m = buildTimeline(multiStage({ graph: true }));
    const b = m.critical.breakdown;
    expect(sumMs(b)).toBeCloseTo(m.totalMs, 6);
    expect(ms(b, 'setup')).toBe(80);
    // the builder's FROM (400) and the final stage's FROM (5)
    expect(ms(b, 'resolve')).toBe(405);
    expect(ms(b, 'run')).toBe(3000);
    expect(ms(b, 'export')).toBe(300);
    expect(ms(b, 'push')).toBe(800);
    // between the last step (4357) and the export (4400): config, manifest, tags
    expect(ms(b, 'commit')).toBe(43);
    expect(ms(b, 'wait')).toBe(30);
    // deps ran beside builder: its cached RUN is work, but not wall time on the path
    expect(ms(b, 'cache')).toBe(0);
    expect(ms(m.totals, 'cache')).toBe(1500);
    expect(ms(m.totals, 'resolve')).toBe(805);
    expect(sumMs(m.totals)).toBeGreaterThan(m.totalMs);
  });

  it('uses measured step timings when the events carry them', () => {
    const m = buildTimeline(multiStage({ graph: true, timings: true }));
    const byText = new Map(m.lanes.flatMap((l) => l.steps).map((s) => [s.text, s]));
    expect(byText.get('RUN make -C /src')!.segments).toEqual([
      { category: 'run', ms: 2650 },
      { category: 'layer', ms: 350 },
    ]);
    expect(byText.get('COPY . /src')!.segments).toEqual([
      { category: 'context', ms: 350 },
      { category: 'layer', ms: 200 },
      { category: 'copy', ms: 50 },
    ]);
    expect(ms(m.critical.breakdown, 'layer')).toBe(550);
    // measured hashing of COPY . plus the cached COPY --from on the path, which is all hashing
    expect(ms(m.critical.breakdown, 'context')).toBe(390);
  });

  it('attributes unmeasured time by instruction kind, and never more than the step took', () => {
    expect(split('FROM', 'done', 40, undefined, false)).toEqual([{ category: 'resolve', ms: 40 }]);
    expect(split('COPY', 'cached', 12, undefined, false)).toEqual([{ category: 'context', ms: 12 }]);
    expect(split('RUN', 'cached', 3, undefined, false)).toEqual([{ category: 'cache', ms: 3 }]);
    expect(split('COPY', 'cached', 10, { hashMs: 8 }, false)).toEqual([
      { category: 'context', ms: 8 },
      { category: 'cache', ms: 2 },
    ]);
    expect(split('ENV', 'done', 1, undefined, false)).toEqual([{ category: 'meta', ms: 1 }]);
    expect(split('WORKDIR', 'done', 5, undefined, true)).toEqual([{ category: 'layer', ms: 5 }]);
    expect(split('COPY', 'done', 9, undefined, true)).toEqual([{ category: 'copy', ms: 9 }]);
    // measured parts that overshoot the wall time (clock granularity) are scaled into it
    const over = split('RUN', 'done', 100, { runMs: 90, layerMs: 30 }, true);
    expect(sumMs(over)).toBeCloseTo(100, 6);
    expect(ms(over, 'run')).toBeCloseTo(75, 6);
  });

  it('sees a job-slot wait when a stage without dependencies starts only as another ends', () => {
    const events: BuildEvent[] = [
      { type: 'build-start', file: 'Dockerfile', stages: 2, steps: 4, stageGraph: [{ index: 0, deps: [] }, { index: 1, deps: [] }], time: T(0) },
      ...steps([
        { stage: 0, text: 'FROM scratch', start: 0, ms: 1 },
        { stage: 0, text: 'RUN a', start: 1, ms: 2000 },
        { stage: 1, text: 'FROM scratch', start: 2001, ms: 1 },
        { stage: 1, text: 'RUN b', start: 2002, ms: 1000 },
      ]),
    ];
    const m = buildTimeline(events);
    expect(m.critical.steps).toEqual([1, 2, 3, 4]);
    expect(m.critical.links).toEqual([{ from: 0, to: 1, kind: 'slot', gapMs: 0 }]);
    expect(m.outcome).toEqual({ state: 'unfinished' });
  });

  it('keeps a short parallel stage off the path when another ended later', () => {
    const events: BuildEvent[] = [
      { type: 'build-start', file: 'Dockerfile', stages: 3, steps: 5, time: T(0) },
      ...steps([
        { stage: 0, stageName: 'a', text: 'FROM scratch AS a', start: 0, ms: 1 },
        { stage: 1, stageName: 'b', text: 'FROM scratch AS b', start: 0, ms: 1 },
        { stage: 0, stageName: 'a', text: 'RUN short', start: 1, ms: 100 },
        { stage: 1, stageName: 'b', text: 'RUN long', start: 1, ms: 900 },
        { stage: 2, text: 'FROM a', start: 901, ms: 1 },
        { stage: 2, text: 'RUN --mount=type=bind,from=b,target=/b true', start: 902, ms: 50 },
      ]),
    ];
    const m = buildTimeline(events);
    expect(m.lanes[2]!.deps).toEqual([0, 1]);
    expect(m.critical.steps).toEqual([2, 4, 5, 6]);
    expect(m.critical.links).toEqual([{ from: 1, to: 2, kind: 'dep', gapMs: 0 }]);
  });

  it('describes a failed build: the failing step, its last output, the error', () => {
    const m = buildTimeline(failing());
    expect(m.outcome).toEqual({ state: 'failed', error: 'RUN exited with status 2', stepIndex: 3 });
    const s = m.lanes[0]!.steps[2]!;
    expect(s).toMatchObject({ status: 'error', error: 'RUN exited with status 2', start: 35, end: 935, critical: true });
    expect(s.logTail).toEqual(['compiling <main>', 'error: \u0007bell & "quotes"']);
    expect(m.stats.failed).toBe(1);
    expect(sumMs(m.critical.breakdown)).toBeCloseTo(m.totalMs, 6);
  });

  it('draws a step cut off by a cancel up to the last event, and an export cut short too', () => {
    const events: BuildEvent[] = [
      { type: 'build-start', file: 'Dockerfile', stages: 1, steps: 2, time: T(0) },
      ...steps([{ stage: 0, text: 'FROM scratch', start: 1, ms: 1 }]),
      { type: 'step-start', step: { id: '0/2', stage: 0, index: 2, total: 2, text: 'RUN sleep 100', line: 2 }, time: T(5) },
      { type: 'step-log', step: { id: '0/2', stage: 0, index: 2, total: 2, text: 'RUN sleep 100', line: 2 }, stream: 'stderr', line: 'zzz', time: T(700) },
    ];
    const m = buildTimeline(events);
    expect(m.lanes[0]!.steps[1]).toMatchObject({ status: 'unfinished', start: 5, end: 700, logTail: ['zzz'] });
    expect(m.totalMs).toBe(700);

    const cut = buildTimeline([...multiStage().filter((e) => e.type !== 'build-done' && !(e.type === 'phase' && e.name === 'push' && e.state === 'done'))]);
    // without build-done the clock starts at the first event (the warning, 20 ms in)
    expect(cut.phases.find((p) => p.name === 'push')).toMatchObject({ start: 4680, end: 5380 });
  });

  it('copes with no events at all', () => {
    const m = buildTimeline([]);
    expect(m).toMatchObject({ totalMs: 0, lanes: [], outcome: { state: 'unfinished' }, critical: { steps: [], links: [] } });
  });
});
