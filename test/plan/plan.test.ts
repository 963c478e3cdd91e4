import { describe, expect, it } from 'vitest';
import { KilnError } from '../../src/errors/index.js';
import { parseDockerfile } from '../../src/frontend/index.js';
import { StageVars, planBuild, type BuildPlan, type PlanOptions } from '../../src/plan/index.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' };
function plan(text: string, opts: Partial<PlanOptions> = {}): BuildPlan {
  return planBuild(parseDockerfile(text, { file: 'Dockerfile' }), { buildArgs: {}, targetPlatform: arm64, buildPlatform: amd64, ...opts });
}
function planError(text: string, opts: Partial<PlanOptions> = {}): KilnError {
  try {
    plan(text, opts);
  } catch (e) {
    expect(e).toBeInstanceOf(KilnError);
    return e as KilnError;
  }
  throw new Error('expected a plan error');
}

const MULTI = `ARG GO=1.22
FROM golang:\${GO} AS build
RUN go build
FROM alpine:3.20 AS tools
RUN apk add curl
FROM build AS test
RUN go test
FROM scratch AS release
COPY --from=build /out /app
COPY --from=tools /usr/bin/curl /curl
`;

describe('stages and targets', () => {
  it('keeps only what the target needs, in dependency order', () => {
    const p = plan(MULTI);
    expect(p.stages.map((s) => s.name)).toEqual(['build', 'tools', 'release']);
    expect(p.targetIndex).toBe(3);
    const release = p.stages[2]!;
    expect(release.base).toEqual({ kind: 'scratch' });
    expect(release.deps).toEqual([0, 1]);
    expect(p.stages[0]!.base).toEqual({ kind: 'image', ref: 'golang:1.22' });
    expect(p.stages[0]!.instructions.map((i) => i.kind)).toEqual(['RUN']);
  });
  it('--target selects a stage (case-insensitively) and prunes the rest', () => {
    const p = plan(MULTI, { target: 'TEST' });
    expect(p.stages.map((s) => s.index)).toEqual([0, 2]);
    expect(p.stages[1]!.base).toEqual({ kind: 'stage', index: 0 });
    expect(p.targetIndex).toBe(2);
  });
  it('an unknown --target is an error with a suggestion', () => {
    const e = planError(MULTI, { target: 'relase' });
    expect(e.code).toBe('DOCKERFILE_PLAN');
    expect(e.format()).toBe('Dockerfile:8: target stage "relase" could not be found (did you mean release?)');
    expect(planError(MULTI, { target: 'zzz' }).hint).toBe('stages: build, tools, test, release');
  });
  it('COPY --from by index, by image, and RUN --mount from=', () => {
    const p = plan('FROM alpine AS a\nFROM alpine\nCOPY --from=0 /x /x\nCOPY --from=nginx:1.27 /etc/nginx /n\nRUN --mount=type=bind,from=a,target=/a --mount=type=cache,from=busybox,target=/c true\n');
    const s = p.stages[1]!;
    expect(s.deps).toEqual([0]);
  });
  it('COPY --from refuses variable expansion, as BuildKit does (toCommand: "variable expansion is not supported for --from")', () => {
    // the parser's flag reader has already removed quotes and escapes; what is left is $-expansion
    for (const from of ['$FLAVOR', '${FLAVOR}', '${FLAVOR:-dev}', 'x$FLAVOR', '${FLAVOR:?no}']) {
      const e = planError(`FROM alpine AS dev\nFROM alpine AS prod\nFROM scratch\nARG FLAVOR=dev\nCOPY --from=${from} /x /x\n`, { buildArgs: { FLAVOR: 'prod' } });
      expect(e.format()).toMatch(/^Dockerfile:5: variable expansion is not supported for --from/);
      expect(e.hint).toMatch(/define a new stage with FROM using ARG from global scope/);
    }
    // the workaround BuildKit names: a stage FROM a global ARG
    const p = plan('ARG FLAVOR=dev\nFROM alpine AS dev\nFROM alpine AS prod\nFROM ${FLAVOR} AS chosen\nFROM scratch\nCOPY --from=chosen /x /x\n', { buildArgs: { FLAVOR: 'prod' } });
    expect(p.stages.map((s) => s.index)).toEqual([1, 2, 3]);
  });
  it('forward references, self references and bad indexes are errors', () => {
    expect(planError('FROM alpine\nCOPY --from=later /x /x\nFROM alpine AS later\n').format()).toMatch(/^Dockerfile:2: COPY --from refers to stage "later", which is defined later \(line 3\)/);
    expect(planError('FROM alpine AS a\nCOPY --from=a /x /y\n').message).toMatch(/circular dependency/);
    expect(planError('FROM golang AS golang\n').message).toMatch(/circular dependency/);
    expect(planError('FROM alpine\nCOPY --from=3 /x /x\n').format()).toBe('Dockerfile:2: COPY --from refers to stage 3, which is not defined before stage 0 (the Dockerfile has 1 stage(s), numbered from 0)');
  });
  it('duplicate stage names, missing FROM, instructions before FROM', () => {
    expect(planError('FROM a AS x\nFROM b AS X\n').format()).toBe('Dockerfile:2: duplicate stage name "X" (stage 0 (line 1) already uses this name)');
    expect(planError('ARG A=1\n').message).toMatch(/no FROM instruction/);
    expect(planError('RUN x\nFROM a\n').format()).toBe('Dockerfile:1: RUN before the first FROM (only ARG may come before the first FROM)');
  });
  it('an empty base name is an error', () => {
    expect(planError('ARG IMG\nFROM $IMG\n').message).toMatch(/base name \(\$IMG\) should not be blank/);
  });
});

describe('args', () => {
  it('global ARGs: defaults, build args, predefined args visible in FROM', () => {
    const p = plan('ARG REG=docker.io\nARG IMG=$REG/library/alpine\nFROM --platform=$BUILDPLATFORM $IMG:$TARGETARCH\n', { buildArgs: { REG: 'ghcr.io' } });
    expect(p.globalArgs).toEqual({ REG: 'ghcr.io', IMG: 'ghcr.io/library/alpine' });
    expect(p.stages[0]!.base).toEqual({ kind: 'image', ref: 'ghcr.io/library/alpine:arm64' });
    expect(p.stages[0]!.platform).toBe('linux/amd64');
  });
  it('predefined args and the proxy family (hidden)', () => {
    const p = plan('FROM a\n', { buildArgs: { HTTP_PROXY: 'http://proxy:3128', no_proxy: 'localhost' } });
    const byName = Object.fromEntries(p.predefinedArgs.map((a) => [a.name, a]));
    expect(byName.TARGETPLATFORM).toEqual({ name: 'TARGETPLATFORM', value: 'linux/arm64', hidden: false }); // normalised, as BuildKit does
    expect(byName.TARGETVARIANT!.value).toBe('');
    expect(byName.BUILDPLATFORM!.value).toBe('linux/amd64');
    expect(byName.BUILDVARIANT!.value).toBe('');
    expect(byName.HTTP_PROXY).toEqual({ name: 'HTTP_PROXY', value: 'http://proxy:3128', hidden: true });
    expect(byName.no_proxy!.hidden).toBe(true);
    expect(p.unusedBuildArgs).toEqual([]);
  });
  it('reports build args no stage declares', () => {
    const p = plan('ARG USED\nFROM a\nARG ALSO\n', { buildArgs: { USED: '1', ALSO: '2', TYPO: '3', HTTPS_PROXY: 'x' } });
    expect(p.unusedBuildArgs).toEqual(['TYPO']);
  });
});

describe('StageVars', () => {
  const text = `ARG VERSION=1.0
ARG UNUSED_GLOBAL=g
FROM alpine
RUN echo before
ARG VERSION
ARG TARGETARCH
ARG FLAG=$VERSION-x OTHER=\${FLAG}y
ENV HOME=/root PATH=/app:$PATH VERSION=env
ARG HOME=/ignored
RUN echo after
`;
  it('walks a stage with Docker scoping rules', () => {
    const p = plan(text, { buildArgs: { HTTP_PROXY: 'http://p' } });
    const stage = p.stages[0]!;
    const sv = StageVars.forStage(p, stage, ['PATH=/usr/bin', 'HOME=/base']);
    const seen = stage.instructions.map((i) => sv.next(i));
    const first = seen[0]!.vars;
    expect(first.lookup('VERSION')).toBeUndefined();
    expect(first.lookup('UNUSED_GLOBAL')).toBeUndefined();
    expect(first.lookup('TARGETARCH')).toBeUndefined();
    expect(first.lookup('HOME')).toBe('/base');
    expect(first.args).toEqual([]);
    // BuildKit's proxy env sets both spellings
    expect(first.hiddenEnv).toEqual({ HTTP_PROXY: 'http://p', http_proxy: 'http://p' });
    const env = seen[4]!;
    expect(env.vars.args).toEqual([
      { name: 'VERSION', value: '1.0', hidden: false },
      { name: 'TARGETARCH', value: 'arm64', hidden: false },
      { name: 'FLAG', value: '1.0-x', hidden: false },
      { name: 'OTHER', value: '1.0-xy', hidden: false },
    ]);
    expect(env.instruction.kind === 'ENV' && env.instruction.pairs).toEqual([
      { key: 'HOME', value: '/root' }, { key: 'PATH', value: '/app:/usr/bin' }, { key: 'VERSION', value: 'env' },
    ]);
    const last = seen[6]!.vars;
    // Of an ENV and an ARG of the same name the later one wins (BuildKit's dispatchArg puts the ARG in
    // the build state's environment): ENV VERSION after ARG VERSION, ARG HOME after ENV HOME. The image's
    // Env keeps the ENV values.
    expect(last.lookup('VERSION')).toBe('env');
    expect(last.lookup('HOME')).toBe('/ignored');
    expect(last.args.find((a) => a.name === 'HOME')).toEqual({ name: 'HOME', value: '/ignored', hidden: false, overridesEnv: true });
    expect(last.env).toEqual(['PATH=/app:/usr/bin', 'HOME=/root', 'VERSION=env']);
  });
  it('TARGETSTAGE is the --target name, or "default"', () => {
    const p = plan('FROM a AS One\nARG TARGETSTAGE\nFROM a\n', { target: 'One' });
    expect(p.predefinedArgs.find((a) => a.name === 'TARGETSTAGE')?.value).toBe('One');
    expect(plan('FROM a\n').predefinedArgs.find((a) => a.name === 'TARGETSTAGE')?.value).toBe('default');
  });
  it('a build arg makes an ARG default unevaluated', () => {
    const p = plan('FROM a\nARG FOO\nARG BAR=${FOO:?missing}\nRUN x\n', { buildArgs: { BAR: '1' } });
    const sv = StageVars.forStage(p, p.stages[0]!);
    for (const i of p.stages[0]!.instructions.slice(0, 2)) sv.next(i);
    expect(sv.current().lookup('BAR')).toBe('1');
  });
  it('build args override stage ARG defaults', () => {
    const p = plan('FROM a\nARG MODE=debug\nRUN x\n', { buildArgs: { MODE: 'release' } });
    const sv = StageVars.forStage(p, p.stages[0]!);
    sv.next(p.stages[0]!.instructions[0]!);
    expect(sv.current().lookup('MODE')).toBe('release');
  });
  it('a declared proxy arg is visible and no longer hidden', () => {
    const p = plan('FROM a\nARG HTTP_PROXY\nRUN x\n', { buildArgs: { HTTP_PROXY: 'http://p' } });
    const sv = StageVars.forStage(p, p.stages[0]!);
    sv.next(p.stages[0]!.instructions[0]!);
    const v = sv.current();
    // the declared spelling is an ordinary ARG now; RUN still gets the other one, as BuildKit's proxy env does
    expect(v.hiddenEnv).toEqual({ http_proxy: 'http://p' });
    expect(v.args).toEqual([{ name: 'HTTP_PROXY', value: 'http://p', hidden: false }]);
    expect(v.lookup('HTTP_PROXY')).toBe('http://p');
  });
  it('a declared ARG without value stays unset', () => {
    const p = plan('FROM a\nARG NOVAL\nRUN x\n');
    const sv = StageVars.forStage(p, p.stages[0]!);
    sv.next(p.stages[0]!.instructions[0]!);
    expect(sv.current().args).toEqual([]);
    expect(sv.isDeclared('NOVAL')).toBe(true);
  });
});
