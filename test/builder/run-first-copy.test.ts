import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExecutors, type BuildExecutors } from '../../src/builder/executors.js';
import { parseDockerfile } from '../../src/frontend/parse.js';
import type { Instruction } from '../../src/frontend/instructions.js';
import type { FsStep, PreparedStep, RunFirstStep } from '../../src/solver/solver.js';
import type { StepKeyInputs } from '../../src/steps/step-context.js';
import { scratchConfig } from '../../src/image/config.js';
import { tempStore } from '../helpers/temp-dir.js';
import { sha256 } from '../../src/image/digest.js';

let t: Awaited<ReturnType<typeof tempStore>>;
let dir: string;
beforeAll(async () => {
  t = await tempStore();
  dir = await mkdtemp(join(tmpdir(), 'kiln-runfirst-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await t.cleanup();
});

const files: Record<string, string> = { 'src/a.txt': 'alpha\n', 'src/sub/b.txt': 'bravo\n', 'src/sub/c.bin': 'x'.repeat(300_000) };

async function context(name: string): Promise<string> {
  const ctx = join(dir, name);
  for (const [p, content] of Object.entries(files)) {
    await mkdir(join(ctx, p, '..'), { recursive: true });
    await writeFile(join(ctx, p), content);
  }
  return ctx;
}

function copyStep(missExpected: boolean): FsStep {
  const parsed = parseDockerfile('FROM scratch\nCOPY src /app\n', { file: 'Dockerfile' });
  const instruction = parsed.instructions[1] as Extract<Instruction, { kind: 'COPY' }>;
  const config = scratchConfig({ os: 'linux', architecture: 'amd64' });
  return {
    instruction,
    state: {
      stage: { index: 0, instructions: [instruction] } as unknown as FsStep['state']['stage'],
      draft: { config, layers: [] },
      meta: { config: config.config ?? {}, cmdSetInStage: false },
      key: sha256(Buffer.from('parent')),
      platform: { os: 'linux', architecture: 'amd64' },
      baseLayers: 0,
    },
    runEnv: [],
    step: { id: '0/2', stage: 0, index: 2, total: 2, text: instruction.original, line: 2 },
    signal: new AbortController().signal,
    snapshotWanted: false,
    missExpected,
  };
}

async function executorsFor(ctx: string): Promise<BuildExecutors> {
  return createExecutors({
    store: t.store, contextDir: ctx, dockerfilePath: undefined, layer: {}, sourceDateEpoch: 0, emit: () => undefined,
    policy: { network: 'none', entitlements: new Set(), secrets: [], ssh: [] },
    ensureLayers: async () => undefined,
  });
}

const noFrom = (): never => {
  throw new Error('no COPY --from here');
};

describe('a COPY whose miss is expected', () => {
  it('runs before its key, which it learns from the layer write: removing the sources afterwards does not matter, and the key is the one hashing first gives', async () => {
    const ctx = await context('run-first');
    const ex = await executorsFor(ctx);
    let late: StepKeyInputs;
    try {
      const runFirst = await ex.prepare(copyStep(true), noFrom);
      expect('runFirst' in runFirst).toBe(true);
      const first = runFirst as RunFirstStep;
      const outcome = await first.execute();
      expect(outcome.layer?.digest).toMatch(/^sha256:/);
      // the key needs no second read of any file: with the files gone it is still computed
      await rm(join(ctx, 'src', 'sub'), { recursive: true });
      await rm(join(ctx, 'src', 'a.txt'));
      late = await first.key();
    } finally {
      await ex.close();
    }

    // the usual order, on a fresh context with the same content and a cold hash cache of its own
    const ctx2 = await context('hash-first');
    const ex2 = await executorsFor(ctx2);
    try {
      const usual = await ex2.prepare(copyStep(false), noFrom);
      expect('runFirst' in usual).toBe(false);
      const keyed = usual as PreparedStep;
      expect(late.inputs).toEqual(keyed.inputs);
      expect(late.files).toEqual(keyed.files);
      expect(late.hashMs).toBeGreaterThanOrEqual(0);
      expect((await keyed.execute()).layer?.diffID).toBeDefined();
    } finally {
      await ex2.close();
    }
  });

  it('still fails on a missing source, naming it', async () => {
    const ctx = await context('missing');
    const ex = await executorsFor(ctx);
    try {
      const step = copyStep(true);
      const parsed = parseDockerfile('FROM scratch\nCOPY nothere /app\n', { file: 'Dockerfile' });
      step.instruction = parsed.instructions[1] as FsStep['instruction'];
      const prepared = (await ex.prepare(step, noFrom)) as RunFirstStep;
      await expect(prepared.execute()).rejects.toThrow(/"nothere" not found/);
    } finally {
      await ex.close();
    }
  });
});
