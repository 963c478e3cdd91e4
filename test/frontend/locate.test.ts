import { describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDockerfile, parseSyntaxTree, runChecks, type BuildWarning, type Range } from '../../src/frontend/index.js';
import { astInstructionStarts, createLocator, locateError } from '../../src/frontend/locate.js';
import { KilnError } from '../../src/errors/index.js';
import { DockerfileError } from '../../src/frontend/dockerfile-error.js';
import { planBuild } from '../../src/plan/index.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `line:column:keyword` of every instruction, as kiln's scanner sees them. */
function kilnStarts(text: string): string[] {
  return parseSyntaxTree(text, 'Dockerfile').nodes.map((n) => `${n.startLine}:${n.startColumn}:${n.keyword}`);
}
function astStarts(text: string): string[] {
  return astInstructionStarts(text).map((i) => `${i.line}:${i.column}:${i.keyword}`);
}

/** The source text a (1-based, end-exclusive) range covers. */
function textAt(text: string, r: Range): string {
  const lines = text.replace(/^\ufeff/, '').split('\n');
  if (r.start.line === r.end.line) return lines[r.start.line - 1]!.slice(r.start.column - 1, r.end.column - 1);
  const parts = [lines[r.start.line - 1]!.slice(r.start.column - 1)];
  for (let l = r.start.line; l < r.end.line - 1; l++) parts.push(lines[l]!);
  parts.push(lines[r.end.line - 1]!.slice(0, r.end.column - 1));
  return parts.join('\n');
}

describe('kiln and dockerfile-ast agree on instruction starts and keywords', () => {
  const fixtures = readdirSync(join(repoRoot, 'fixtures')).sort()
    .map((d) => join(repoRoot, 'fixtures', d, 'Dockerfile')).filter((f) => existsSync(f));

  // BuildKit's own parser corpus is compared in `npm run conformance` (conformance/parser-locate.test.ts).
  it('finds the project fixtures', () => {
    expect(fixtures.length).toBeGreaterThanOrEqual(2);
  });

  it.each(fixtures.map((f) => relative(repoRoot, f)))('fixture %s', (file) => {
    const text = readFileSync(join(repoRoot, file), 'utf8');
    expect(astStarts(text)).toEqual(kilnStarts(text));
  });

  it.each([
    ['heredocs (several per line, <<-, quoted delimiters)', 'FROM a\nRUN <<EOF\nFROM x\nEOF\nRUN python3 <<PY && sh <<SH\nprint(1)\nPY\necho\nSH\nCOPY <<-EOF /dest\n\tFROM inner\n\tEOF\nRUN <<"EOF" cat\nx\nEOF\nCMD c\n'],
    ['CRLF', 'FROM alpine\r\nRUN a \\\r\n  b\r\nCMD c\r\n'],
    ['a UTF-8 BOM (both report columns without it)', '\ufeffFROM alpine\nRUN a\n'],
    ['empty and comment lines inside a continuation', 'FROM alpine\nRUN a \\\n\n# c\n  b\nCMD c\n'],
    ['# escape=`', '# escape=`\nFROM alpine\nRUN a `\n  b\nCOPY a\\ b /\nCMD c\n'],
    ['indentation and lower case', '  FROM alpine\n\tRUN a\n   # c\n   cmd x\n'],
    ['ONBUILD', 'FROM alpine\nONBUILD RUN x\nonbuild  copy a b\n'],
    ['a continuation at the end of the file', 'FROM alpine\nRUN a \\'],
  ])('kiln edge case: %s', (_name, text) => {
    expect(astStarts(text)).toEqual(kilnStarts(text));
  });

  // Heredoc forms BuildKit accepts and dockerfile-ast does not recognise: it reads the body
  // as instructions (or never finds the terminator). The locator parses one instruction's
  // own lines at a time, so the instructions after them are still placed correctly.
  it.each([
    ['a file-descriptor prefix (3<<EOF)', 'FROM a\nRUN 3<<EOF cat\nx\nEOF\nCMD c\n', ['1:1:FROM', '2:1:RUN', '3:1:x', '4:1:EOF', '5:1:CMD']],
    ['a partly quoted delimiter (<<E"OF")', 'FROM a\nRUN <<E"OF" cat\nx\nEOF\nCMD c\n', ['1:1:FROM', '2:1:RUN']],
  ])('known dockerfile-ast difference: %s', (_name, text, ast) => {
    expect(kilnStarts(text)).toEqual(['1:1:FROM', '2:1:RUN', '5:1:CMD']);
    expect(astStarts(text)).toEqual(ast);
    const parsed = parseDockerfile(text, { file: 'Dockerfile' });
    const cmd = parsed.instructions[2]!;
    expect(createLocator(text).locate(cmd, { kind: 'arguments' })).toEqual({ start: { line: 5, column: 5 }, end: { line: 5, column: 6 } });
  });

  it('the trailing `\\\\` case is located per instruction too', () => {
    const text = 'FROM a\nENV C trailing\\\\backslash\\\\\nENV D x\n';
    const parsed = parseDockerfile(text, { file: 'Dockerfile' });
    expect(parsed.instructions.map((i) => i.range.start.line)).toEqual([1, 2, 3]);
    const loc = createLocator(text);
    expect(loc.locate(parsed.instructions[2]!, { kind: 'key', name: 'D' })).toEqual({ start: { line: 3, column: 5 }, end: { line: 3, column: 6 } });
  });
});

describe('warnings located on their token', () => {
  const PIN = 'alpine:3.20@sha256:' + 'a'.repeat(64);
  function located(text: string, opts: Parameters<typeof runChecks>[1] = {}): string[] {
    const warnings = runChecks(parseDockerfile(text, { file: 'Dockerfile' }), { ...opts, locator: createLocator(text) });
    return warnings.map((w) => {
      if (!w.range) return `${w.rule} ${w.line} (not located)`;
      expect(w.column).toBe(w.range.start.column);
      return `${w.rule} ${w.range.start.line}:${w.range.start.column} ${textAt(text, w.range)}`;
    });
  }

  it('FROM rules: stage name, AS keyword, flag, variable, image', () => {
    const text = [
      'ARG VERSION=3.20 IMG',
      `FROM --platform=linux/arm64 ${PIN} as Build`,
      `FROM --platform=$TARGETPLATFORM ${PIN} AS build`,
      `FROM ${PIN} AS scratch`,
      'FROM alpine:$VERSON',
      'FROM  $IMG',
      'USER app',
    ].join('\n');
    // PIN is 83 characters long.
    expect(located(text)).toEqual([
      'StageNameCasing 2:116 Build',
      'FromAsCasing 2:113 as',
      'FromPlatformFlagConstDisallowed 2:6 --platform=linux/arm64',
      'DuplicateStageName 3:120 build',
      'RedundantTargetPlatform 3:6 --platform=$TARGETPLATFORM',
      'ReservedStageName 4:93 scratch',
      'UndefinedArgInFrom 5:13 $VERSON',
      'UnpinnedBaseImage 5:6 alpine:$VERSON',
      'InvalidDefaultArgInFrom 6:7 $IMG',
    ]);
  });

  it('keywords, arguments, keys, values and variables', () => {
    const token = 'ghp_' + 'a'.repeat(36);
    const text = [
      `FROM ${PIN}`,
      'run a',
      'MAINTAINER me',
      'CMD app',
      'CMD ["b"]',
      'WORKDIR  rel/dir',
      'ENV LEGACY value here',
      `ARG A B=1 GITHUB_TOKEN=${token}`,
      'ENV X=1 \\',
      '    DB_PASSWORD=x',
      'EXPOSE 80/TCP 127.0.0.1:8080:80',
      'ADD https://example.com/a.tgz /a',
      'COPY secret.txt ["x"] /app/',
      'USER root',
    ].join('\n');
    expect(located(text, { isIgnored: (p) => p === 'secret.txt' })).toEqual([
      'NoUserInFinalStage 1:1 FROM',
      'ConsistentInstructionCasing 2:1 run',
      'MaintainerDeprecated 3:1 MAINTAINER',
      'JSONArgsRecommended 4:5 app',
      'MultipleInstructionsDisallowed 5:1 CMD',
      'WorkdirRelativePath 6:10 rel/dir',
      'LegacyKeyValueFormat 7:5 LEGACY value here',
      'SecretsUsedInArgOrEnv 8:11 GITHUB_TOKEN',
      `SecretInValue 8:24 ${token}`,
      'SecretsUsedInArgOrEnv 10:5 DB_PASSWORD',
      'ExposeProtoCasing 11:8 80/TCP',
      'ExposeInvalidFormat 11:15 127.0.0.1:8080:80',
      'AddRemoteWithoutChecksum 12:5 https://example.com/a.tgz',
      'CopyIgnoredFile 13:6 secret.txt',
    ]);
  });

  it('UndefinedVar on the variable, also on a continuation line; the warning keeps the instruction line', () => {
    const text = 'FROM scratch\nARG NAME=x\nWORKDIR /$NAM\nCOPY a \\\n  ${MISSING:-b} /\nUSER app\n';
    const w = runChecks(parseDockerfile(text, { file: 'Dockerfile' }), { locator: createLocator(text) })
      .filter((x) => x.rule === 'UndefinedVar');
    expect(w.map((x) => [x.line, x.range && textAt(text, x.range), x.range?.start])).toEqual([
      [3, '$NAM', { line: 3, column: 10 }],
      [4, '${MISSING:-b}', { line: 5, column: 3 }],
    ]);
  });

  it('JSON-form sources, quoted LABEL keys and # escape=` are located', () => {
    const token = 'AKIAABCDEFGHIJKLMNOP';
    const text = `# escape=\`\nFROM ${PIN}\nCOPY ["my file", "/x"]\nLABEL "the key"=${token} \`\n  other=1\nUSER app\n`;
    expect(located(text, { isIgnored: (p) => p === 'my file' })).toEqual([
      'CopyIgnoredFile 3:7 "my file"',
      `SecretInValue 4:17 ${token}`,
    ]);
  });

  it('a warning dockerfile-ast cannot place keeps its line, without column or range', () => {
    const text = `FROM ${PIN}\nRUN a \\\n\n  b\nUSER app\n`;
    const w = runChecks(parseDockerfile(text, { file: 'Dockerfile' }), { locator: createLocator(text) });
    expect(w.map((x) => [x.rule, x.line, x.column, x.range])).toEqual([['NoEmptyContinuation', 4, undefined, undefined]]);
  });

  it('without a locator (kiln build) warnings have no column or range', () => {
    const w: BuildWarning[] = runChecks(parseDockerfile(`FROM alpine AS Build\n`, { file: 'Dockerfile' }));
    expect(w.length).toBeGreaterThan(0);
    for (const x of w) expect([x.column, x.range]).toEqual([undefined, undefined]);
  });

  it('a locator never places a token on an instruction whose keyword it does not see there', () => {
    const text = `FROM ${PIN}\nCMD app\n`;
    const parsed = parseDockerfile(text, { file: 'Dockerfile' });
    // As if the file had changed between parsing and locating.
    const loc = createLocator(`FROM ${PIN}\nRUN app\n`);
    expect(loc.locate(parsed.instructions[1]!, { kind: 'keyword' })).toBeUndefined();
  });
});

describe('parse errors get a column', () => {
  const LINUX = { os: 'linux', architecture: 'amd64' };
  function columnOf(text: string, plan = false): { message: string; line: number; column?: number; token?: string } {
    let err: unknown;
    try {
      const parsed = parseDockerfile(text, { file: 'Dockerfile' });
      if (plan) planBuild(parsed, { buildArgs: {}, targetPlatform: LINUX, buildPlatform: LINUX });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KilnError);
    const e = err as KilnError;
    locateError(e, text);
    const loc = e.location!;
    const line = text.split('\n')[loc.line - 1] ?? '';
    return {
      message: e.message, line: loc.line,
      ...(loc.column !== undefined ? { column: loc.column, token: line.slice(loc.column - 1).split(/\s/)[0] } : {}),
    };
  }

  it.each([
    ['unknown instruction', 'FROM a\n  RUNN x\n', 2, 'RUNN'],
    ['unknown flag', 'FROM a\nRUN --mout=type=cache,target=/x make\n', 2, '--mout=type=cache,target=/x'],
    ['duplicate flag (the second one)', 'FROM a\nCOPY --chown=a --chown=b x /\n', 2, '--chown=b'],
    ['missing flag value', 'FROM a\nCOPY --from x /\n', 2, '--from'],
    ['bad boolean', 'FROM a\nCOPY --link=maybe x /\n', 2, '--link=maybe'],
    ['bad mount (the second --mount)', 'FROM a\nRUN --mount=type=cache,target=/a --mount=type=cahce,target=/x make\n', 2, 'type=cahce,target=/x'],
    ['bad network', 'FROM a\nRUN --network=bridge make\n', 2, 'bridge'],
    ['bad security', 'FROM a\nRUN --network=none --security=root make\n', 2, 'root'],
    ['bad duration', 'FROM a\nHEALTHCHECK --timeout=3s --interval=1us CMD x\n', 2, '1us'],
    ['bad retries', 'FROM a\nHEALTHCHECK --retries=x CMD x\n', 2, 'x'],
    ['negative retries', 'FROM a\nHEALTHCHECK --interval=1s --retries=-1 CMD x\n', 2, '-1'],
    ['too short start period', 'FROM a\nHEALTHCHECK --start-period=10ns CMD x\n', 2, '10ns'],
    ['bad stage name', 'FROM a AS 1st\n', 1, '1st'],
    ['FROM argument count', 'FROM a b\n', 1, 'a'],
    ['unterminated heredoc', 'FROM a\nRUN cat <<EOF\nhello\n', 2, '<<EOF'],
    ['ONBUILD ONBUILD', 'FROM a\nONBUILD ONBUILD RUN x\n', 2, 'ONBUILD'],
    ['ONBUILD FROM', 'FROM a\nONBUILD   FROM x\n', 2, 'FROM'],
    ['ENV without =', 'FROM a\nENV A=1 B\n', 2, 'B'],
    ['ARG without name', 'FROM a\nARG =x\n', 2, '=x'],
    ['HEALTHCHECK type', 'FROM a\nHEALTHCHECK --interval=1s RUN x\n', 2, 'RUN'],
    ['JSON with a non-string', 'FROM a\nCMD  [1]\n', 2, '[1]'],
    ['SHELL not JSON', 'FROM a\nSHELL bash -c\n', 2, 'bash'],
    ['HEALTHCHECK NONE with arguments', 'FROM a\nHEALTHCHECK NONE x\n', 2, 'NONE'],
    ['HEALTHCHECK CMD without command', 'FROM a\nHEALTHCHECK   CMD\n', 2, 'CMD'],
    ['no argument: the keyword', 'FROM a\n WORKDIR\n', 2, 'WORKDIR'],
    ['any other instruction error: its keyword', 'FROM a\nCOPY x\n', 2, 'COPY'],
    ['unknown trigger instruction', 'FROM a\nONBUILD RUNN x\n', 2, 'RUNN'],
    ['bad trigger flag', 'FROM a\nONBUILD COPY --mout=x a b\n', 2, '--mout=x'],
    ['ONBUILD without a trigger', 'FROM a\nONBUILD\n', 2, 'ONBUILD'],
    ['unterminated quoted <<- heredoc', 'FROM a\nRUN <<-"EOF" cat\nhello\n', 2, '<<-"EOF"'],
    ['escape directive: its value', '# escape=x\nFROM a\n', 1, 'x'],
  ])('%s', (_name, text, line, token) => {
    expect(columnOf(text)).toMatchObject({ line, token });
  });

  it.each([
    ['duplicate stage name', 'FROM a AS b\nFROM a AS  B\n', 2, 'B'],
    ['a stage defined later', 'FROM a AS one\nCOPY  --from=two /x /y\nFROM a AS two\n', 2, 'two'],
    ['FROM a stage defined later', 'FROM a AS one\nFROM  two\nFROM a AS two\n', 2, 'two'],
    ['an empty base name', 'ARG IMG\nFROM  $IMG\n', 2, '$IMG'],
    ['an instruction before FROM: its keyword', 'ARG A\n RUN x\nFROM a\n', 2, 'RUN'],
  ])('plan error: %s', (_name, text, line, token) => {
    expect(columnOf(text, true)).toMatchObject({ line, token });
  });

  it('no column where there is no token to point at', () => {
    expect(columnOf('# just a comment\n')).toEqual({ message: 'file with no instructions', line: 1 });
  });

  it('the token is named where the error is raised, not read back from the message', () => {
    let err: unknown;
    try {
      parseDockerfile('FROM a\nRUN --mout=type=cache,target=/x make\n', { file: 'Dockerfile' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(DockerfileError);
    expect((err as DockerfileError).token).toEqual({ kind: 'flag', name: 'mout' });
    // a message that says nothing about the token still gets the token's column
    const e = new DockerfileError('DOCKERFILE_PARSE', 'something is wrong', { location: { file: 'D', line: 2 }, token: { kind: 'flag-value', name: 'network' } });
    expect(locateError(e, 'FROM a\nRUN --network=bridge make\n')).toBe(true);
    expect(e.location!.column).toBe('RUN --network='.length + 1);
  });

  it('other errors and errors that already have a column are left alone', () => {
    expect(locateError(new Error('x'), 'FROM a\n')).toBe(false);
    const e = new KilnError('DOCKERFILE_PARSE', 'unknown instruction "X"', { location: { file: 'D', line: 1, column: 3 } });
    expect(locateError(e, 'X\n')).toBe(false);
    expect(e.location!.column).toBe(3);
    expect(locateError(new KilnError('REGISTRY', 'x', { location: { file: 'D', line: 1 } }), 'FROM a\n')).toBe(false);
  });
});

describe('dockerfile-ast stays off the build path', () => {
  it('only locate.ts imports dockerfile-ast, and only kiln check loads locate.ts at run time', () => {
    const src = join(repoRoot, 'src');
    const files = (readdirSync(src, { recursive: true }) as string[]).filter((f) => f.endsWith('.ts')).map((f) => join(src, f));
    const importers: string[] = [];
    const runtimeLocate: string[] = [];
    for (const f of files) {
      const code = readFileSync(f, 'utf8');
      if (/from ['"]dockerfile-ast['"]|import\(['"]dockerfile-ast['"]\)/.test(code)) importers.push(relative(repoRoot, f));
      // `import type` is erased at compile time; anything else loads the module.
      if (/import (?!type )[^;]*from ['"][./]*locate\.js['"]|import\(['"][./]*(?:frontend\/)?locate\.js['"]\)/.test(code)) runtimeLocate.push(relative(repoRoot, f));
    }
    expect(importers).toEqual(['src/frontend/locate.ts']);
    expect(runtimeLocate).toEqual(['src/cli/commands/check.ts']);
  });
});
