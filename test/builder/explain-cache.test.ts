import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bench, BASE, type Bench } from './helpers.js';
import type { BuildEvent } from '../../src/events/index.js';
import { KilnError } from '../../src/errors/index.js';

let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

const reasons = (events: BuildEvent[]): Record<string, string | undefined> =>
  Object.fromEntries(events.flatMap((e) => (e.type === 'step-done' && e.step.text !== undefined && !/^(FROM|ARG) /.test(e.step.text) ? [[e.step.text, e.missReason]] : [])));

describe('--explain-cache', () => {
  it('compares with the previous build of the same Dockerfile and context, never another project in the store', async () => {
    const df = `FROM ${BASE}\nARG V=1\nCOPY . /src\nRUN echo "$V" > /v\n`;
    const one = await b.context({ Dockerfile: df, 'a.txt': 'A', 'b.txt': 'B' });
    const other = await b.context({ Dockerfile: df, 'a.txt': 'other project', 'b.txt': 'B' });
    await b.build(one, { tags: ['localhost/ex/one:1'] });
    // same Dockerfile, another context: nothing to compare with, although the steps sit at the same lines
    const first = await b.build(other, { tags: ['localhost/ex/other:1'], explainCache: true });
    expect(reasons(first.events)).toEqual({ 'COPY . /src': 'no earlier build of this step', 'RUN echo "$V" > /v': 'no earlier build of this step' });

    // back to the first project: a changed file is named, and so is a changed build arg
    await writeFile(path.join(one, 'b.txt'), 'B2');
    const changed = await b.build(one, { tags: ['localhost/ex/one:2'], explainCache: true, buildArgs: { V: '2' } });
    // (only a RUN sees build args, as in BuildKit: the COPY names its file alone)
    expect(reasons(changed.events)).toEqual({ 'COPY . /src': 'file b.txt changed', 'RUN echo "$V" > /v': 'build arg V changed: "1" → "2"' });
  });

  it('names the instruction when its text changed', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo one > /x\n` });
    await b.build(ctx, { tags: ['localhost/ex/instr:1'] });
    await writeFile(path.join(ctx, 'Dockerfile'), `FROM ${BASE}\nRUN echo two > /x\n`);
    const r = await b.build(ctx, { tags: ['localhost/ex/instr:2'], explainCache: true });
    expect(reasons(r.events)).toEqual({ 'RUN echo two > /x': 'instruction changed: "RUN echo one > /x" → "RUN echo two > /x"' });
  });
});

describe('step logs', () => {
  it('one file per build and step (never appended across builds); a failing RUN names its file', async () => {
    const logs = path.join(b.root, 'logs');
    const before = new Set(await readdir(logs).catch(() => [] as string[]));
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo out-$RANDOM; echo err >&2\n` });
    await b.build(ctx, { noCache: true });
    await b.build(ctx, { noCache: true });
    const made = (await readdir(logs)).filter((f) => !before.has(f));
    expect(made).toHaveLength(2);
    for (const f of made) {
      expect(f).toMatch(/^\d{8}T\d{6}-[0-9a-f]{6}-stage0-line2\.log$/);
      const text = await readFile(path.join(logs, f), 'utf8');
      expect(text.match(/^out-/gm)).toHaveLength(1);
    }

    const failing = await b.context({ Dockerfile: `FROM ${BASE}\nRUN for i in 1 2 3 4 5 6 7 8; do echo line$i; done; exit 3\n` });
    const err = await b.build(failing).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    const k = err as KilnError;
    expect(k.code).toBe('RUN_FAILED');
    const m = /full output: (\S+\.log)/.exec(k.format());
    expect(m).not.toBeNull();
    expect(path.dirname(m![1]!)).toBe(logs);
    // the message quotes the last lines; the file has every one
    expect(await readFile(m![1]!, 'utf8')).toBe('line1\nline2\nline3\nline4\nline5\nline6\nline7\nline8\n');
    expect(k.format()).toMatch(/exit code 3; last output: line6 \| line7 \| line8 \(full output: /);
  });
});
