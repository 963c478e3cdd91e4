import { describe, expect, it } from 'vitest';
import { parseDockerfile, runChecks, hasCheckErrors, RULES, type CheckOptions } from '../../src/frontend/index.js';

// A clean tail so kiln's own rules stay quiet unless a test wants them.
const PIN = 'alpine:3.20@sha256:' + 'a'.repeat(64);
const TAIL = 'USER app\n';
function check(text: string, opts: CheckOptions = {}) {
  return runChecks(parseDockerfile(text, { file: 'Dockerfile' }), opts);
}
function rules(text: string, opts: CheckOptions = {}): string[] {
  return check(text, opts).map((w) => `${w.line}:${w.rule}`);
}

describe('BuildKit rules', () => {
  it('a clean Dockerfile has no warnings', () => {
    expect(check(`FROM ${PIN} AS build\nWORKDIR /src\nCMD ["app"]\n${TAIL}`)).toEqual([]);
  });
  it('StageNameCasing and FromAsCasing', () => {
    expect(rules(`FROM ${PIN} AS Build\n${TAIL}`)).toEqual(['1:StageNameCasing']);
    expect(rules(`FROM ${PIN} as build\n${TAIL}`)).toEqual(['1:FromAsCasing']);
    expect(check(`FROM ${PIN} as build\n${TAIL}`)[0]!.message).toBe("'as' and 'FROM' keywords' casing do not match");
    expect(rules(`from ${PIN} as build\nuser app\n`)).toEqual([]);
  });
  it('NoEmptyContinuation comes from the parser', () => {
    const w = check(`FROM ${PIN}\nRUN a \\\n\n  b\n${TAIL}`);
    expect(w.map((x) => x.rule)).toEqual(['NoEmptyContinuation']);
    expect(w[0]!.url).toBe('https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/');
  });
  it('ConsistentInstructionCasing follows the majority', () => {
    expect(rules(`FROM ${PIN}\nRUN a\nrun b\n${TAIL}`)).toEqual(['3:ConsistentInstructionCasing']);
    expect(check(`from ${PIN}\nrun a\nRUN b\nuser app\n`)[0]!.message).toBe("Command 'RUN' should match the case of the command majority (lowercase)");
  });
  it('DuplicateStageName and ReservedStageName', () => {
    expect(rules(`FROM ${PIN} AS a\nFROM ${PIN} AS a\n${TAIL}`)).toEqual(['2:DuplicateStageName']);
    expect(rules(`FROM ${PIN} AS scratch\n${TAIL}`)).toEqual(['1:ReservedStageName']);
  });
  it('JSONArgsRecommended unless SHELL is set; MultipleInstructionsDisallowed', () => {
    expect(rules(`FROM ${PIN}\nCMD app\nENTRYPOINT ["x"]\n${TAIL}`)).toEqual(['2:JSONArgsRecommended']);
    expect(rules(`FROM ${PIN}\nSHELL ["/bin/bash", "-c"]\nCMD app\n${TAIL}`)).toEqual([]);
    expect(rules(`FROM ${PIN}\nCMD ["a"]\nCMD ["b"]\nHEALTHCHECK NONE\nHEALTHCHECK NONE\n${TAIL}`)).toEqual(['3:MultipleInstructionsDisallowed', '5:MultipleInstructionsDisallowed']);
  });
  it('MaintainerDeprecated and LegacyKeyValueFormat', () => {
    expect(rules(`FROM ${PIN}\nMAINTAINER me\nENV A 1\nLABEL b 2\nENV C=3\n${TAIL}`)).toEqual(['2:MaintainerDeprecated', '3:LegacyKeyValueFormat', '4:LegacyKeyValueFormat']);
  });
  it('UndefinedArgInFrom with a suggestion; predefined args are declared', () => {
    const w = check(`ARG VERSION=3.20\nFROM alpine:$VERSON@sha256:${'a'.repeat(64)}\n${TAIL}`);
    expect(w.map((x) => x.rule)).toContain('UndefinedArgInFrom');
    expect(w.find((x) => x.rule === 'UndefinedArgInFrom')!.message).toBe("FROM argument 'VERSON' is not declared (did you mean VERSION?)");
    expect(rules(`FROM --platform=$BUILDPLATFORM ${PIN}\n${TAIL}`)).toEqual([]);
  });
  it('InvalidDefaultArgInFrom', () => {
    expect(rules(`ARG IMG\nFROM $IMG\n${TAIL}`)).toContain('2:InvalidDefaultArgInFrom');
    expect(rules(`ARG TAG\nFROM alpine:$TAG\n${TAIL}`)).toContain('2:InvalidDefaultArgInFrom');
    expect(rules(`ARG IMG=${PIN}\nFROM $IMG\n${TAIL}`)).toEqual([]);
  });
  it('WorkdirRelativePath only before an absolute WORKDIR', () => {
    expect(rules(`FROM ${PIN}\nWORKDIR app\nWORKDIR /srv\nWORKDIR sub\n${TAIL}`)).toEqual(['2:WorkdirRelativePath']);
  });
  it('UndefinedVar where the environment is known, with a suggestion; ARG without value counts as defined', () => {
    const w = check(`FROM scratch\nARG NAME=x\nARG EMPTY\nENV GREETING=hello\nWORKDIR /$NAM\nCOPY $EMPTY $GREETING /\nRUN echo $NOT_CHECKED\n${TAIL}`);
    expect(w.filter((x) => x.rule === 'UndefinedVar').map((x) => `${x.line}:${x.message}`)).toEqual(["5:Usage of undefined variable '$NAM' (did you mean $NAME?)"]);
    // An image base's ENV is unknown without baseEnv: no UndefinedVar.
    expect(rules(`FROM ${PIN}\nWORKDIR $HOME\n${TAIL}`)).toEqual([]);
    expect(rules(`FROM ${PIN}\nWORKDIR $HOME/$NOPE\n${TAIL}`, { baseEnv: () => ['HOME=/root'] })).toEqual(['2:UndefinedVar']);
  });
  it('RedundantTargetPlatform and FromPlatformFlagConstDisallowed', () => {
    expect(rules(`FROM --platform=$TARGETPLATFORM ${PIN}\n${TAIL}`)).toEqual(['1:RedundantTargetPlatform']);
    expect(rules(`FROM --platform=linux/amd64 ${PIN}\n${TAIL}`)).toEqual(['1:FromPlatformFlagConstDisallowed']);
    expect(rules(`FROM --platform=linux/amd64 ${PIN} AS build-amd64\n${TAIL}`)).toEqual([]);
  });
  it('SecretsUsedInArgOrEnv', () => {
    expect(rules(`FROM ${PIN}\nARG GITHUB_TOKEN\nENV DB_PASSWORD=x\nARG PUBLIC_KEY\nENV KEYBOARD=us\n${TAIL}`)).toEqual(['2:SecretsUsedInArgOrEnv', '3:SecretsUsedInArgOrEnv']);
  });
  it('ExposeProtoCasing and ExposeInvalidFormat', () => {
    expect(rules(`FROM ${PIN}\nEXPOSE 80/TCP 53/udp 127.0.0.1:8080:80\n${TAIL}`)).toEqual(['2:ExposeProtoCasing', '2:ExposeInvalidFormat']);
  });
  it('CopyIgnoredFile once the context is known', () => {
    const df = `FROM ${PIN}\nCOPY secret.txt ./src /app/\nCOPY --from=other secret.txt /x\nADD --checksum=sha256:1 https://e.com/x.tgz /\n${TAIL}`;
    expect(rules(df)).toEqual([]);
    expect(rules(df.replace('ADD --checksum=sha256:1 https://e.com/x.tgz /\n', ''), { isIgnored: (p) => p === 'secret.txt' })).toEqual(['2:CopyIgnoredFile']);
  });
});

describe("kiln's security rules", () => {
  it('NoUserInFinalStage: no USER, USER root, USER inherited from a stage', () => {
    expect(rules(`FROM ${PIN}\n`)).toEqual(['1:NoUserInFinalStage']);
    expect(rules(`FROM ${PIN}\nUSER root\n`)).toEqual(['1:NoUserInFinalStage']);
    expect(rules(`FROM ${PIN}\nUSER 0:0\n`)).toEqual(['1:NoUserInFinalStage']);
    expect(rules(`FROM ${PIN} AS base\nUSER app\nFROM base\nRUN x\n`)).toEqual([]);
  });
  it('UnpinnedBaseImage: no tag, :latest, tag without digest; stages and scratch are fine', () => {
    const w = check(`FROM alpine\nFROM alpine:latest\nFROM alpine:3.20\nFROM ${PIN} AS s\nFROM s\nFROM scratch\n${TAIL}`).filter((x) => x.rule === 'UnpinnedBaseImage');
    expect(w.map((x) => x.line)).toEqual([1, 2, 3]);
    expect(w[0]!.message).toMatch(/no tag/);
    expect(w[1]!.message).toMatch(/:latest/);
    expect(w[2]!.message).toMatch(/not pinned by digest/);
  });
  it('SecretInValue in ARG, ENV and LABEL values', () => {
    const w = check(`FROM ${PIN}\nARG X=AKIAABCDEFGHIJKLMNOP\nENV URL=https://bob:hunter22@example.com/\nLABEL k=ghp_${'a'.repeat(36)}\nENV OK=https://example.com/\n${TAIL}`);
    expect(w.filter((x) => x.rule === 'SecretInValue').map((x) => x.line)).toEqual([2, 3, 4]);
  });
  it('AddRemoteWithoutChecksum', () => {
    expect(rules(`FROM ${PIN}\nADD https://example.com/a.tgz /a\nADD --checksum=sha256:abc https://example.com/b.tgz /b\nADD local.tgz /c\n${TAIL}`)).toEqual(['2:AddRemoteWithoutChecksum']);
  });
});

describe('check directive and overrides', () => {
  const df = `FROM alpine\nCMD app\n`;
  it('skip= removes rules, skip=all removes everything, error=true escalates', () => {
    expect(rules(`# check=skip=JSONArgsRecommended,UnpinnedBaseImage\n${df}`)).toEqual(['2:NoUserInFinalStage']);
    expect(check(`# check=skip=all\n${df}`)).toEqual([]);
    const w = check(`# check=error=true\n${df}`);
    expect(w.length).toBe(3);
    expect(w.every((x) => x.error === true)).toBe(true);
    expect(hasCheckErrors(w)).toBe(true);
    expect(hasCheckErrors(check(df))).toBe(false);
  });
  it('an override (kiln check --config, or BUILDKIT_DOCKERFILE_CHECK) replaces the directive', () => {
    expect(check(`# check=skip=all\n${df}`, { check: 'error=true' }).length).toBe(3);
    expect(check(`# check=error=true\n${df}`, { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=all' } })).toEqual([]);
    expect(check(df, { plan: { buildArgs: { BUILDKIT_DOCKERFILE_CHECK: 'skip=all' } } })).toEqual([]);
  });
  it('every warning names file, line and rule, and every rule is documented', () => {
    for (const w of check(`# check=error=false\nfrom alpine AS X\nMAINTAINER x\n`)) {
      expect(w.file).toBe('Dockerfile');
      expect(w.line).toBeGreaterThan(0);
      expect(RULES.some((r) => r.name === w.rule)).toBe(true);
    }
    expect(RULES).toHaveLength(24);
  });
});
