import { describe, expect, it } from 'vitest';
import { KilnError } from '../../src/errors/index.js';
import { expandInstruction, parseDockerfile, type Instruction } from '../../src/frontend/index.js';

const instr = (line: string): Instruction => parseDockerfile(`FROM a\n${line}\n`, { file: 'Dockerfile' }).instructions[1]!;
const vars = new Map([['A', '1'], ['DIR', '/srv'], ['USER', 'app'], ['PORTS', '80 443'], ['UID', '1000'], ['STAGE', 'build']]);

describe('expandInstruction', () => {
  it('ENV uses the values from before the instruction', () => {
    const e = expandInstruction(instr('ENV A=2 B=$A C="${A}x"'), vars);
    expect(e.kind === 'ENV' && e.pairs).toEqual([{ key: 'A', value: '2' }, { key: 'B', value: '1' }, { key: 'C', value: '1x' }]);
  });
  it('legacy ENV value is one word with quotes removed', () => {
    const e = expandInstruction(instr('ENV GREETING "hello world" $A'), vars);
    expect(e.kind === 'ENV' && e.pairs).toEqual([{ key: 'GREETING', value: 'hello world 1' }]);
  });
  it('never expands RUN/CMD/ENTRYPOINT shell or exec forms', () => {
    for (const line of ['RUN echo $A', 'CMD echo $A', 'ENTRYPOINT ["echo", "$A"]', 'RUN ["echo", "$A"]']) {
      const i = instr(line);
      expect(expandInstruction(i, vars)).toEqual(i);
    }
  });
  it('expands RUN --mount values and re-validates them', () => {
    const e = expandInstruction(instr('RUN --mount=type=cache,target=$DIR/cache,uid=$UID,from=$STAGE make'), vars);
    expect(e.kind === 'RUN' && e.mounts[0]).toMatchObject({ type: 'cache', target: '/srv/cache', uid: 1000, from: 'build' });
    expect(e.kind === 'RUN' && e.cmd).toEqual({ form: 'shell', text: 'make' });
    try {
      expandInstruction(instr('RUN --mount=type=cache,target=/x,uid=$USER make'), vars);
      throw new Error('expected error');
    } catch (err) {
      expect((err as KilnError).format()).toBe('Dockerfile:2: invalid --mount: invalid value "app" for mount option uid (expected a number)');
    }
  });
  it('COPY and ADD: sources, dest, --from, --chown, --chmod, heredoc bodies unless quoted', () => {
    const c = expandInstruction(instr('COPY --from=$STAGE --chown=$USER:$USER --chmod=0${A}55 $DIR/a ${DIR}/c $DIR/'), vars);
    expect(c).toMatchObject({ from: 'build', chown: 'app:app', chmod: '0155', sources: ['/srv/a', '/srv/c'], dest: '/srv/' });
    // Whitespace form splits before expansion (as BuildKit does), so a quoted source with a space is an error.
    expect(() => expandInstruction(instr('COPY "$DIR/a b" /d'), vars)).toThrow(/matching double-quote/);
    const p = parseDockerfile('FROM a\nCOPY <<EOF <<"RAW" /dst/\nuser=$USER "q"\nEOF\nuser=$USER\nRAW\n', { file: 'Dockerfile' }).instructions[1]!;
    const h = expandInstruction(p, vars);
    expect(h.kind === 'COPY' && h.heredocs.map((x) => x.body)).toEqual(['user=app "q"\n', 'user=$USER\n']);
    const a = expandInstruction(instr('ADD --checksum=sha256:$A https://example.com/$USER.tgz /opt/'), vars);
    expect(a).toMatchObject({ checksum: 'sha256:1', sources: ['https://example.com/app.tgz'], dest: '/opt/' });
  });
  it('COPY source words: quotes are removed per word', () => {
    const c = expandInstruction(instr('COPY "$DIR" \'$DIR\' /d'), vars);
    expect(c.kind === 'COPY' && c.sources).toEqual(['/srv', '$DIR']);
  });
  it('WORKDIR, USER, VOLUME, STOPSIGNAL, LABEL, EXPOSE (which splits words)', () => {
    expect(expandInstruction(instr('WORKDIR $DIR/app'), vars)).toMatchObject({ path: '/srv/app' });
    expect(expandInstruction(instr('USER ${USER}:${GROUP:-users}'), vars)).toMatchObject({ user: 'app:users' });
    expect(expandInstruction(instr('VOLUME $DIR/data'), vars)).toMatchObject({ paths: ['/srv/data'] });
    expect(expandInstruction(instr('STOPSIGNAL SIG${SIG:-TERM}'), vars)).toMatchObject({ signal: 'SIGTERM' });
    expect(expandInstruction(instr('LABEL "$USER.version"="$A"'), vars)).toMatchObject({ pairs: [{ key: 'app.version', value: '1' }] });
    expect(expandInstruction(instr('EXPOSE $PORTS 8080/tcp'), vars)).toMatchObject({ ports: ['80', '443', '8080/tcp'] });
  });
  it('ONBUILD triggers are left for the child build', () => {
    const o = instr('ONBUILD COPY $A /x');
    expect(expandInstruction(o, vars)).toEqual(o);
  });
  it('FROM image and platform', () => {
    const f = parseDockerfile('FROM --platform=$P alpine:$A\n', { file: 'Dockerfile' }).instructions[0]!;
    expect(expandInstruction(f, new Map([['P', 'linux/arm64'], ['A', '3.20']]))).toMatchObject({ image: 'alpine:3.20', platform: 'linux/arm64' });
  });
  it('expansion errors carry the location', () => {
    try {
      expandInstruction(instr('WORKDIR ${NOPE:?set NOPE}'), vars, { file: 'x/Dockerfile' });
      throw new Error('expected error');
    } catch (e) {
      expect((e as KilnError).format()).toBe('x/Dockerfile:2: WORKDIR: NOPE: set NOPE');
    }
  });
  it('uses the Dockerfile escape character', () => {
    const p = parseDockerfile('# escape=`\nFROM a\nWORKDIR c:\\app\\`$DIR\n', { file: 'Dockerfile' }).instructions[1]!;
    expect(expandInstruction(p, vars, { escape: '`' })).toMatchObject({ path: 'c:\\app\\$DIR' });
  });
});
