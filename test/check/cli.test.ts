import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCommand } from '../../src/cli/commands/check.js';
import { outlineCommand } from '../../src/cli/commands/outline.js';
import { targetsCommand } from '../../src/cli/commands/targets.js';
import { KilnError } from '../../src/errors/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kiln-frontend-cli-'));
  await writeFile(join(dir, 'Dockerfile'), [
    '# VERSION of the app',
    'ARG VERSION=1.0',
    '# build compiles it',
    `FROM alpine:3.20@sha256:${'b'.repeat(64)} AS build`,
    'ARG VERSION',
    'RUN --mount=type=secret,id=token make',
    'COPY secret.key /k',
    'FROM build',
    'USER app',
    'CMD ["/app"]',
    '',
  ].join('\n'));
  await writeFile(join(dir, '.dockerignore'), 'secret.key\n');
  await writeFile(join(dir, 'strict.Dockerfile'), '# check=error=true\nFROM alpine\nCMD run\n');
  await writeFile(join(dir, 'broken.Dockerfile'), 'FROM alpine\nRUNN x\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('kiln check', () => {
  it('reports warnings with file, line, column and rule; exit 0 when none is an error', async () => {
    const r = await checkCommand(dir, { buildArg: [] });
    expect(r.exitCode).toBe(0);
    const shown = join(dir, 'Dockerfile');
    expect(r.output).toBe(`${shown}:7:6: warning: Attempting to Copy file "secret.key" that is excluded by .dockerignore (CopyIgnoredFile)\nCheck complete, 1 warning found.\n`);
  });
  it('a token on a continuation line is printed at its own line and column', async () => {
    const file = join(dir, 'cont.Dockerfile');
    await writeFile(file, `FROM scratch\nCOPY a \\\n    $NOPE /\nUSER app\n`);
    const r = await checkCommand(undefined, { file, buildArg: [] });
    expect(r.output).toBe(`${file}:3:5: warning: Usage of undefined variable '$NOPE' (UndefinedVar)\nCheck complete, 1 warning found.\n`);
    const j = JSON.parse((await checkCommand(undefined, { file, buildArg: [], json: true })).output) as { warnings: Array<Record<string, unknown>> };
    expect(j.warnings[0]).toMatchObject({ line: 2, column: 5, range: { start: { line: 3, column: 5 }, end: { line: 3, column: 10 } } });
  });
  it('exit code 1 and error lines when # check=error=true; --json', async () => {
    const file = join(dir, 'strict.Dockerfile');
    const r = await checkCommand(undefined, { file, buildArg: [], json: true });
    expect(r.exitCode).toBe(1);
    const j = JSON.parse(r.output) as { warnings: Array<{ rule: string; error: boolean; line: number; column?: number; range?: unknown; file: string }>; errors: number };
    expect(j.errors).toBe(3);
    expect(j.warnings.map((w) => w.rule)).toEqual(['UnpinnedBaseImage', 'NoUserInFinalStage', 'JSONArgsRecommended']);
    expect(j.warnings[0]!.file).toBe(file);
    // '# check=error=true\nFROM alpine\nCMD run\n': the image, the final FROM, CMD's arguments.
    expect(j.warnings.map((w) => [w.line, w.column, w.range])).toEqual([
      [2, 6, { start: { line: 2, column: 6 }, end: { line: 2, column: 12 } }],
      [2, 1, { start: { line: 2, column: 1 }, end: { line: 2, column: 5 } }],
      [3, 5, { start: { line: 3, column: 5 }, end: { line: 3, column: 8 } }],
    ]);
  });
  it('--config overrides the directive', async () => {
    const r = await checkCommand(undefined, { file: join(dir, 'strict.Dockerfile'), buildArg: [], config: 'skip=all' });
    expect(r).toEqual({ output: 'Check complete, no warnings found.\n', exitCode: 0 });
  });
  it('a parse error is a located KilnError', async () => {
    const file = join(dir, 'broken.Dockerfile');
    const e = await checkCommand(undefined, { file, buildArg: [] }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(KilnError);
    expect((e as KilnError).format()).toBe(`${file}:2: unknown instruction "RUNN" (did you mean RUN?)`);
    expect((e as KilnError).location).toEqual({ file, line: 2, column: 1 });
  });
  it('a missing Dockerfile is NOT_FOUND', async () => {
    const e = await checkCommand(join(dir, 'nope'), { buildArg: [] }).catch((x: unknown) => x);
    expect((e as KilnError).code).toBe('NOT_FOUND');
  });
});

describe('kiln outline and kiln targets', () => {
  it('outline as a table', async () => {
    const out = await outlineCommand(dir, { buildArg: ['VERSION=2.0'] });
    expect(out).toBe([
      'TARGET:      stage 1 (unnamed)',
      '',
      'BUILD ARG   VALUE   DESCRIPTION',
      'VERSION     2.0     of the app',
      '',
      'SECRET   REQUIRED',
      'token    false',
      '',
    ].join('\n'));
  });
  it('outline --target --json', async () => {
    const o = JSON.parse(await outlineCommand(dir, { buildArg: [], target: 'build', json: true })) as { name: string; description: string; secrets: unknown[] };
    expect(o.name).toBe('build');
    expect(o.description).toBe('compiles it');
    expect(o.secrets).toEqual([{ id: 'token', required: false, line: 6 }]);
  });
  it('targets', async () => {
    expect(await targetsCommand(dir, {})).toBe('TARGET              DESCRIPTION\nbuild               compiles it\nstage 1 (default)\n');
    const j = JSON.parse(await targetsCommand(dir, { json: true })) as { targets: Array<{ name?: string; default: boolean }> };
    expect(j.targets.map((t) => [t.name, t.default])).toEqual([['build', false], [undefined, true]]);
  });
});
