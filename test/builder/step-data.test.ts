import { access } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunFailedError } from '../../src/errors/index.js';
import type { BuildEvent } from '../../src/events/index.js';
import { buildTimeline, renderReportSvg } from '../../src/report/index.js';
import { bench, BASE, type Bench } from './helpers.js';

/** What a build's step events and errors carry: the measured time split, and a RUN failure's own data. */
let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

type Done = Extract<BuildEvent, { type: 'step-done' }>;
type Cached = Extract<BuildEvent, { type: 'step-cached' }>;
const doneOf = (events: BuildEvent[], text: string): Done | undefined => events.find((e): e is Done => e.type === 'step-done' && e.step.text === text);
const cachedOf = (events: BuildEvent[], text: string): Cached | undefined => events.find((e): e is Cached => e.type === 'step-cached' && e.step.text === text);

describe('step time splits', () => {
  it("a RUN step's event carries its measured run and layer times, and the report draws them", async () => {
    const run = 'RUN sleep 0.2 && echo built > /built.txt';
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY a.txt /a.txt\n${run}\n`, 'a.txt': 'a' });
    const { events } = await b.build(ctx, { tags: ['localhost/step-data/split:1'] });
    expect(await b.read('localhost/step-data/split:1', '/built.txt')).toBe('built\n');

    const done = doneOf(events, run);
    expect(done?.layer).toBeDefined();
    const t = done!.timings!;
    // the process slept 200 ms: its run time covers that, and the whole step covers every part
    expect(t.runMs).toBeGreaterThanOrEqual(200);
    expect(t.layerMs).toBeGreaterThan(0);
    // it reads nothing from the context: no hashing to report
    expect(t.hashMs).toBeUndefined();
    expect(t.runMs! + t.layerMs!).toBeLessThanOrEqual(done!.durationMs + 2);
    const copy = doneOf(events, 'COPY a.txt /a.txt');
    expect(copy?.timings?.hashMs).toBeGreaterThanOrEqual(0);

    const bar = buildTimeline(events).lanes.flatMap((l) => l.steps).find((s) => s.text === run)!;
    expect(bar.segments.map((s) => s.category)).toEqual(expect.arrayContaining(['run', 'layer']));
    expect(bar.segments.find((s) => s.category === 'run')!.ms).toBeGreaterThanOrEqual(200);
    // the bar's tooltip shows the command and its layer write side by side
    const svg = renderReportSvg(events);
    const tip = new RegExp(`data-tip="#${bar.index}  RUN sleep[^"]*"`).exec(svg)?.[0];
    expect(tip).toMatch(/RUN \d[^·"]* · layer write \d/);
  });

  it('a cached COPY still reports the hashing that found its record', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY a.txt /a.txt\n`, 'a.txt': 'cached' });
    await b.build(ctx);
    const { events } = await b.build(ctx);
    const hit = cachedOf(events, 'COPY a.txt /a.txt');
    expect(hit?.timings?.hashMs).toBeGreaterThanOrEqual(0);
  });
});

describe('RUN failures keep their data through the build', () => {
  it('the error a build throws is a RunFailedError with exit code, step, output tail, log file and location', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nENV X=1\nRUN echo first; echo last >&2; exit 7\n` });
    const err = await b.build(ctx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RunFailedError);
    const f = err as RunFailedError;
    expect(f.code).toBe('RUN_FAILED');
    expect(f.exitCode).toBe(7);
    expect(f.oomKilled).toBe(false);
    expect(f.step).toBe('RUN echo first; echo last >&2; exit 7');
    // stdout and stderr are separate pipes: the tail holds both lines, in whichever order they arrived
    expect([...f.outputTail].sort()).toEqual(['first', 'last']);
    expect(f.location).toEqual({ file: 'Dockerfile', line: 3 });
    expect(f.format()).toMatch(/^Dockerfile:3: process .* exit code 7/);
    await access(f.logFile!);
    expect(f.hint).toBe(`full output: ${f.logFile}`);
  });
});
