import { describe, expect, it } from 'vitest';
import { KilnError } from '../../src/errors/index.js';
import { parseDockerfile, type Instruction } from '../../src/frontend/index.js';

const parse = (text: string) => parseDockerfile(text, { file: 'Dockerfile' });
const one = <K extends Instruction['kind']>(text: string, kind: K): Extract<Instruction, { kind: K }> => {
  const p = parse(text);
  const i = p.instructions.find((x) => x.kind === kind);
  if (!i) throw new Error(`no ${kind}`);
  return i as Extract<Instruction, { kind: K }>;
};
function parseError(text: string, file = 'Dockerfile'): KilnError {
  try {
    parseDockerfile(text, { file });
  } catch (e) {
    expect(e).toBeInstanceOf(KilnError);
    return e as KilnError;
  }
  throw new Error('expected a parse error');
}

describe('logical lines', () => {
  it('joins continuations, drops comment and empty lines inside them, and warns about empty ones', () => {
    const p = parse('FROM a\nRUN echo a \\\n# a comment\n\n  b \\\n  c\nRUN x\n');
    const run = p.instructions[1]!;
    expect(run.kind === 'RUN' && run.cmd).toEqual({ form: 'shell', text: 'echo a   b   c' });
    expect(run.range.start).toEqual({ line: 2, column: 1 });
    expect(run.range.end.line).toBe(6);
    expect(p.instructions[2]!.range.start.line).toBe(7);
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]!.rule).toBe('NoEmptyContinuation');
  });

  it('handles CRLF line endings', () => {
    const p = parse('FROM alpine\r\nRUN echo a \\\r\n  b\r\nENV A=1\r\n');
    expect(p.instructions.map((i) => i.kind)).toEqual(['FROM', 'RUN', 'ENV']);
    const run = p.instructions[1]!;
    expect(run.kind === 'RUN' && run.cmd).toEqual({ form: 'shell', text: 'echo a   b' });
    const env = p.instructions[2]!;
    expect(env.kind === 'ENV' && env.pairs).toEqual([{ key: 'A', value: '1' }]);
  });

  it('uses the escape directive for continuations', () => {
    const p = parse('# escape=`\nFROM windows\nRUN dir c:\\ `\n  /s\n');
    expect(p.directives.escape).toBe('`');
    const run = p.instructions[1]!;
    expect(run.kind === 'RUN' && run.cmd).toEqual({ form: 'shell', text: 'dir c:\\   /s' });
  });

  it('strips a UTF-8 BOM and reports column of indented instructions', () => {
    const p = parse('\uFEFFFROM a\n   RUN x\n');
    expect(p.instructions[1]!.range.start).toEqual({ line: 2, column: 4 });
  });

  it('a double escape at end of line is not a continuation', () => {
    const p = parse('FROM a\nENV C=trailing\\\\\nENV D=x\n');
    expect(p.instructions).toHaveLength(3);
  });

  it('records the comment above an instruction', () => {
    const p = parse('# base image\nFROM a AS build\n# VERSION is the version\n# of the app\nARG VERSION=1\n');
    expect(p.instructions[0]!.comment).toBe('base image');
    expect(p.instructions[1]!.comment).toBe('VERSION is the version\nof the app');
  });
});

describe('directives', () => {
  it('reads syntax, escape and check', () => {
    const p = parse('# syntax=docker/dockerfile:1.7\n# escape=\\\n# check=skip=JSONArgsRecommended,StageNameCasing;error=true\nFROM a\n');
    expect(p.directives).toEqual({ syntax: 'docker/dockerfile:1.7', escape: '\\', check: { skip: ['JSONArgsRecommended', 'StageNameCasing'], error: true } });
  });
  it('check=skip=all', () => {
    expect(parse('# check=skip=all\nFROM a\n').directives.check).toEqual({ skip: 'all', error: false });
  });
  it('ignores directives after the first non-directive line', () => {
    const p = parse('# hello\n# escape=`\nFROM a\n');
    expect(p.directives.escape).toBe('\\');
  });
  it('rejects an invalid escape and repeated directives', () => {
    expect(parseError('# escape=x\nFROM a\n').format()).toBe("Dockerfile:1: invalid escape token 'x' does not match ` or \\");
    expect(parseError('# syntax=a\n# syntax=b\nFROM a\n').format()).toBe('Dockerfile:2: only one syntax parser directive can be used');
  });
});

describe('exec and shell form', () => {
  it('a JSON array of strings is exec form', () => {
    expect(one('FROM a\nCMD ["a", "b c"]\n', 'CMD').cmd).toEqual({ form: 'exec', args: ['a', 'b c'] });
    expect(one('FROM a\nENTRYPOINT []\n', 'ENTRYPOINT').cmd).toEqual({ form: 'exec', args: [] });
    expect(one('FROM a\nRUN ["echo", "\\u0041"]\n', 'RUN').cmd).toEqual({ form: 'exec', args: ['echo', 'A'] });
  });
  it('invalid JSON is shell form, verbatim', () => {
    expect(one("FROM a\nCMD ['a', 'b']\n", 'CMD').cmd).toEqual({ form: 'shell', text: "['a', 'b']" });
    expect(one('FROM a\nCMD ["a", "b"\n', 'CMD').cmd).toEqual({ form: 'shell', text: '["a", "b"' });
    expect(one('FROM a\nRUN echo "$HOME" \'x\'\n', 'RUN').cmd).toEqual({ form: 'shell', text: 'echo "$HOME" \'x\'' });
  });
  it('a JSON array holding a non-string is an error', () => {
    expect(parseError('FROM a\nCMD ["a", 1]\n').format()).toBe('Dockerfile:2: when using JSON array syntax, arrays must be comprised of strings only');
  });
  it('SHELL requires JSON', () => {
    expect(one('FROM a\nSHELL ["/bin/bash", "-c"]\n', 'SHELL').shell).toEqual(['/bin/bash', '-c']);
    expect(parseError('FROM a\nSHELL /bin/bash -c\n').message).toMatch(/JSON form/);
  });
});

describe('heredocs', () => {
  it('RUN with one heredoc', () => {
    const r = one('FROM a\nRUN <<EOF\necho $HOME\necho two\nEOF\nRUN next\n', 'RUN');
    expect(r.cmd).toEqual({ form: 'shell', text: '<<EOF' });
    expect(r.heredocs).toEqual([{ name: 'EOF', body: 'echo $HOME\necho two\n', expand: true, chomp: false }]);
    expect(r.range.end.line).toBe(5);
  });
  it('several heredocs on one line, quoted delimiters, <<- tab stripping', () => {
    const p = parse('FROM a\nRUN python3 <<"PY" && sh <<-SH\nprint("$x")\nPY\n\techo hi\n\t\techo there\n\tSH\nENV A=1\n');
    const r = p.instructions[1]!;
    if (r.kind !== 'RUN') throw new Error();
    expect(r.cmd).toEqual({ form: 'shell', text: 'python3 <<"PY" && sh <<-SH' });
    expect(r.heredocs).toEqual([
      { name: 'PY', body: 'print("$x")\n', expand: false, chomp: false },
      { name: 'SH', body: 'echo hi\necho there\n', expand: true, chomp: true },
    ]);
    expect(p.instructions[2]!.kind).toBe('ENV');
  });
  it('single-quoted and partly quoted delimiters disable expansion; fd prefix is accepted', () => {
    expect(one("FROM a\nRUN <<'E'\nx\nE\n", 'RUN').heredocs[0]!.expand).toBe(false);
    expect(one('FROM a\nRUN cat 3<<E"O"F\nx\nEOF\n', 'RUN').heredocs[0]).toMatchObject({ name: 'EOF', expand: false });
  });
  it('COPY heredoc with its destination', () => {
    const c = one('FROM a\nCOPY --chmod=755 <<EOF /usr/bin/hello\n#!/bin/sh\necho hello\nEOF\n', 'COPY');
    expect(c.sources).toEqual(['<<EOF']);
    expect(c.dest).toBe('/usr/bin/hello');
    expect(c.chmod).toBe('755');
    expect(c.heredocs).toEqual([{ name: 'EOF', body: '#!/bin/sh\necho hello\n', expand: true, chomp: false }]);
  });
  it('heredoc markers are not recognised for other instructions', () => {
    expect(one('FROM a\nCMD <<EOF\n', 'CMD').cmd).toEqual({ form: 'shell', text: '<<EOF' });
  });
  it('unterminated heredoc is an error at the instruction line', () => {
    const e = parseError('FROM a\nRUN <<EOF\necho hi\n');
    expect(e.code).toBe('DOCKERFILE_PARSE');
    expect(e.location).toEqual({ file: 'Dockerfile', line: 2 });
    expect(e.message).toMatch(/unterminated heredoc/);
  });
});

describe('RUN flags', () => {
  it('parses every mount type and option', () => {
    const r = one([
      'FROM a',
      'RUN --mount=type=bind,from=build,source=/out,target=/in,rw \\',
      '    --mount=type=cache,id=go,target=/root/.cache,sharing=private,mode=0700,uid=1000,gid=1000,ro \\',
      '    --mount=type=tmpfs,target=/tmp,size=64m \\',
      '    --mount=type=secret,id=npmrc,target=/root/.npmrc,required,mode=0440 \\',
      '    --mount=type=secret,id=tok,env=TOKEN \\',
      '    --mount=type=ssh,id=gh,required=true \\',
      '    --network=none --security=insecure make',
    ].join('\n') + '\n', 'RUN');
    expect(r.network).toBe('none');
    expect(r.security).toBe('insecure');
    expect(r.cmd).toEqual({ form: 'shell', text: 'make' });
    const strip = r.mounts.map(({ raw: _raw, ...m }) => m);
    expect(strip).toEqual([
      { type: 'bind', target: '/in', source: '/out', from: 'build', readonly: false },
      { type: 'cache', target: '/root/.cache', id: 'go', readonly: true, sharing: 'private', mode: 0o700, uid: 1000, gid: 1000 },
      { type: 'tmpfs', target: '/tmp', size: 64 * 1024 * 1024 },
      { type: 'secret', id: 'npmrc', target: '/root/.npmrc', required: true, mode: 0o440, uid: 0, gid: 0 },
      { type: 'secret', id: 'tok', env: 'TOKEN', required: false, mode: 0o400, uid: 0, gid: 0 },
      { type: 'ssh', id: 'gh', required: true, mode: 0o600, uid: 0, gid: 0 },
    ]);
  });
  it('defaults: bind is read-only, type defaults to bind, secret id from target basename, ssh id default', () => {
    const r = one('FROM a\nRUN --mount=target=/src --mount=type=secret,target=/run/secrets/aws --mount=type=ssh x\n', 'RUN');
    expect(r.mounts[0]).toMatchObject({ type: 'bind', target: '/src', readonly: true });
    expect(r.mounts[1]).toMatchObject({ type: 'secret', id: 'aws', target: '/run/secrets/aws' });
    expect(r.mounts[2]).toMatchObject({ type: 'ssh', id: 'default' });
  });
  it('quoted CSV values keep commas', () => {
    const r = one('FROM a\nRUN --mount="type=bind,\\"target=/a,b\\"" x\n', 'RUN');
    expect(r.mounts[0]).toMatchObject({ type: 'bind', target: '/a,b' });
  });
  it('mount values with variables are validated after expansion', () => {
    const r = one('FROM a\nRUN --mount=type=cache,target=$DIR,uid=$UID x\n', 'RUN');
    expect(r.mounts[0]).toMatchObject({ type: 'cache', target: '$DIR', uid: 0 });
  });
  it('rejects bad mounts with hints', () => {
    const e = parseError('FROM a\nRUN --mount=type=cahce,target=/x y\n');
    expect(e.format()).toBe('Dockerfile:2: invalid --mount=type=cahce,target=/x: unsupported mount type "cahce" (did you mean cache?)');
    expect(parseError('FROM a\nRUN --mount=type=cache,target=/x,sharing=all y\n').message).toMatch(/unsupported sharing value/);
    expect(parseError('FROM a\nRUN --mount=type=bind,target=/x,mode=0755 y\n').message).toMatch(/mode not allowed/);
    expect(parseError('FROM a\nRUN --mount=type=bind,target=/x,tagret=/y y\n').format()).toMatch(/unexpected key 'tagret'.*\(did you mean target\?\)/);
    expect(parseError('FROM a\nRUN --mount=type=secret y\n').message).toMatch(/one of source, target required/);
    expect(parseError('FROM a\nRUN --mount=type=cache,target=/x,uid=abc y\n').message).toMatch(/invalid value "abc" for mount option uid/);
    expect(parseError('FROM a\nRUN --mount=type=cache y\n').message).toMatch(/target is required/);
    expect(parseError('FROM a\nRUN --mount=type=tmpfs,target=/t,size=lots y\n').message).toMatch(/invalid size/);
  });
  it('rejects bad network and security values and unknown flags', () => {
    expect(parseError('FROM a\nRUN --network=bridge x\n').message).toBe('unsupported network mode "bridge"');
    expect(parseError('FROM a\nRUN --security=privileged x\n').message).toBe('unsupported security mode "privileged"');
    const e = parseError('FROM a\nRUN --mout=type=bind,target=/x y\n');
    expect(e.format()).toBe('Dockerfile:2: unknown flag: --mout for RUN (did you mean --mount?)');
  });
});

describe('COPY and ADD', () => {
  it('parses every COPY flag', () => {
    const c = one('FROM a\nCOPY --from=build --chown=app:app --chmod=0644 --link --parents --exclude=*.md --exclude=tmp/ a b /dst/\n', 'COPY');
    expect(c).toMatchObject({ from: 'build', chown: 'app:app', chmod: '0644', link: true, parents: true, exclude: ['*.md', 'tmp/'], sources: ['a', 'b'], dest: '/dst/' });
  });
  it('parses ADD flags, booleans with explicit values', () => {
    const a = one('FROM a\nADD --checksum=sha256:abc --keep-git-dir=true --unpack=false --link=false https://x/y.tgz /y\n', 'ADD');
    expect(a).toMatchObject({ checksum: 'sha256:abc', keepGitDir: true, unpack: false, link: false, sources: ['https://x/y.tgz'], dest: '/y' });
  });
  it('JSON form for paths with spaces; whitespace form keeps quotes for expansion', () => {
    expect(one('FROM a\nCOPY ["my file", "/dst dir/"]\n', 'COPY')).toMatchObject({ sources: ['my file'], dest: '/dst dir/' });
    expect(one('FROM a\nCOPY "a b" /c\n', 'COPY')).toMatchObject({ sources: ['"a', 'b"'], dest: '/c' });
  });
  it('validates', () => {
    expect(parseError('FROM a\nCOPY onlyone\n').message).toMatch(/COPY requires at least two arguments/);
    expect(parseError('FROM a\nCOPY --from a /b\n').format()).toBe('Dockerfile:2: missing a value on flag: --from (write --from=<value>)');
    expect(parseError('FROM a\nCOPY --link=maybe a /b\n').message).toBe('expecting boolean value for flag --link, not: maybe');
    expect(parseError('FROM a\nCOPY --from=a --from=b a /b\n').message).toBe('duplicate flag specified: --from');
    expect(parseError('FROM a\nCOPY --checksum=sha256:x a /b\n').message).toMatch(/unknown flag: --checksum for COPY/);
    expect(parseError('FROM a\nADD --from=x a /b\n').message).toMatch(/unknown flag: --from for ADD/);
  });
});

describe('other instructions', () => {
  it('FROM with platform and stage name', () => {
    expect(one('FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n', 'FROM')).toMatchObject({ image: 'golang:1.22', platform: '$BUILDPLATFORM', stageName: 'Build', asKeyword: 'AS' });
    expect(parseError('FROM a b\n').message).toBe('FROM requires either one or three arguments');
    expect(parseError('FROM a AS 1st\n').message).toMatch(/invalid name for build stage/);
  });
  it('ENV and LABEL in both forms', () => {
    expect(one('FROM a\nENV A=1 B="two words" C=three\\ words\n', 'ENV')).toMatchObject({ legacy: false, pairs: [{ key: 'A', value: '1' }, { key: 'B', value: '"two words"' }, { key: 'C', value: 'three\\ words' }] });
    expect(one('FROM a\nENV PATH /usr/bin:$PATH more\n', 'ENV')).toMatchObject({ legacy: true, pairs: [{ key: 'PATH', value: '/usr/bin:$PATH more' }] });
    expect(one('FROM a\nLABEL org.opencontainers.image.title="kiln" version=1\n', 'LABEL').pairs).toEqual([
      { key: 'org.opencontainers.image.title', value: '"kiln"' }, { key: 'version', value: '1' },
    ]);
  });
  it('ENV without value and ENV with a bare word are errors', () => {
    expect(parseError('FROM a\nENV PATH\n').format()).toBe('Dockerfile:2: ENV must have two arguments (write ENV PATH=<value>)');
    expect(parseError('FROM a\nENV A=1 B\n').message).toMatch(/can't find = in "B"/);
    expect(parseError('FROM a\nENV\n').message).toBe('ENV requires at least one argument');
  });
  it('ARG with several names, defaults with quotes and spaces', () => {
    expect(one('ARG A B=2 C="x y"\nFROM a\n', 'ARG').args).toEqual([{ name: 'A' }, { name: 'B', default: '2' }, { name: 'C', default: '"x y"' }]);
    expect(parseError('FROM a\nARG\n').message).toBe('ARG requires at least one argument');
    expect(parseError('FROM a\nARG =x\n').message).toMatch(/ARG requires a name/);
  });
  it('EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL, MAINTAINER', () => {
    expect(one('FROM a\nEXPOSE 80 443/tcp 53/udp\n', 'EXPOSE').ports).toEqual(['80', '443/tcp', '53/udp']);
    expect(one('FROM a\nVOLUME /a /b\n', 'VOLUME').paths).toEqual(['/a', '/b']);
    expect(one('FROM a\nVOLUME ["/a b"]\n', 'VOLUME').paths).toEqual(['/a b']);
    expect(one('FROM a\nUSER app:app\n', 'USER').user).toBe('app:app');
    expect(one('FROM a\nWORKDIR /srv/$APP\n', 'WORKDIR').path).toBe('/srv/$APP');
    expect(one('FROM a\nSTOPSIGNAL SIGTERM\n', 'STOPSIGNAL').signal).toBe('SIGTERM');
    expect(one('FROM a\nMAINTAINER Jane <j@x>\n', 'MAINTAINER').maintainer).toBe('Jane <j@x>');
    expect(parseError('FROM a\nUSER\n').message).toBe('USER requires exactly one argument');
    expect(parseError('FROM a\nVOLUME [""]\n').message).toBe('VOLUME specified can not be an empty string');
  });
  it('ONBUILD with its trigger parsed', () => {
    const o = one('FROM a\nONBUILD COPY --chown=1 . /app\n', 'ONBUILD');
    expect(o.triggerText).toBe('COPY --chown=1 . /app');
    expect(o.trigger).toMatchObject({ kind: 'COPY', chown: '1', sources: ['.'], dest: '/app' });
    expect(parseError('FROM a\nONBUILD ONBUILD RUN x\n').message).toMatch(/Chaining ONBUILD/);
    expect(parseError('FROM a\nONBUILD FROM x\n').message).toBe("FROM isn't allowed as an ONBUILD trigger");
    expect(parseError('FROM a\nONBUILD RUNN x\n').format()).toBe('Dockerfile:2: unknown instruction "RUNN" (did you mean RUN?)');
  });
  it('HEALTHCHECK CMD with options, NONE, and errors', () => {
    const h = one('FROM a\nHEALTHCHECK --interval=30s --timeout=1m30s --start-period=500ms --start-interval=2s --retries=3 CMD curl -f http://localhost/\n', 'HEALTHCHECK');
    expect(h.test).toEqual({ type: 'CMD', cmd: { form: 'shell', text: 'curl -f http://localhost/' } });
    expect(h.options).toEqual({ interval: 30e9, timeout: 90e9, startPeriod: 5e8, startInterval: 2e9, retries: 3 });
    expect(one('FROM a\nHEALTHCHECK CMD ["/bin/check"]\n', 'HEALTHCHECK').test).toEqual({ type: 'CMD', cmd: { form: 'exec', args: ['/bin/check'] } });
    expect(one('FROM a\nHEALTHCHECK NONE\n', 'HEALTHCHECK').test).toEqual({ type: 'NONE' });
    expect(parseError('FROM a\nHEALTHCHECK CMD\n').message).toBe('Missing command after HEALTHCHECK CMD');
    expect(parseError('FROM a\nHEALTHCHECK NONE x\n').message).toBe('HEALTHCHECK NONE takes no arguments');
    expect(parseError('FROM a\nHEALTHCHECK CONNECT x\n').message).toMatch(/Unknown type "CONNECT" in HEALTHCHECK/);
    expect(parseError('FROM a\nHEALTHCHECK --interval=1us CMD x\n').message).toMatch(/cannot be less than 1ms/);
    expect(parseError('FROM a\nHEALTHCHECK --interval=soon CMD x\n').message).toMatch(/invalid duration/);
    expect(parseError('FROM a\nHEALTHCHECK --retries=-1 CMD x\n').message).toMatch(/cannot be negative/);
  });
  it('keeps keyword casing as written and the logical line', () => {
    const r = parse('from alpine\nrun  echo hi\n').instructions[1]!;
    expect(r.keyword).toBe('run');
    expect(r.original).toBe('run  echo hi');
  });
});

describe('errors', () => {
  it('unknown instruction with a suggestion and the file name the user gave', () => {
    const e = parseError('FROM a\n\nRUNN echo\n', 'docker/app.Dockerfile');
    expect(e.code).toBe('DOCKERFILE_PARSE');
    expect(e.format()).toBe('docker/app.Dockerfile:3: unknown instruction "RUNN" (did you mean RUN?)');
    expect(parseError('FROM a\nFOOBAR x\n').format()).toBe('Dockerfile:2: unknown instruction "FOOBAR"');
  });
  it('empty file and comment-only file', () => {
    expect(parseError('').message).toBe('file with no instructions');
    expect(parseError('# just a comment\n\n').message).toBe('file with no instructions');
  });
  it('flags on instructions that take none', () => {
    expect(parseError('FROM a\nCMD --x ["a"]\n').format()).toBe('Dockerfile:2: unknown flag: --x for CMD (CMD takes no flags)');
  });
  it('lines longer than 65535 bytes', () => {
    expect(parseError(`FROM a\nRUN ${'x'.repeat(70000)}\n`).message).toMatch(/max allowed size/);
  });
});
