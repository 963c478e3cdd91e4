import { describe, expect, it } from 'vitest';
import { parseDockerfile } from '../../src/frontend/index.js';
import { listTargets, outline } from '../../src/plan/index.js';

const DF = `# syntax=docker/dockerfile:1
# GO_VERSION selects the toolchain
ARG GO_VERSION=1.22
ARG UNRELATED=x

# build compiles the binary
FROM golang:\${GO_VERSION} AS build
# LDFLAGS are passed to the linker
ARG LDFLAGS="-s -w"
RUN --mount=type=secret,id=netrc,target=/root/.netrc --mount=type=ssh go build

# Runs the tests
FROM build AS test
ARG TEST_FLAGS
RUN --mount=type=secret,id=netrc,required go test $TEST_FLAGS

FROM scratch
COPY --from=build /out /app
`;
const parsed = parseDockerfile(DF, { file: 'Dockerfile' });

describe('outline', () => {
  it('default target: args used by the needed stages with values and descriptions, secrets and ssh', () => {
    const o = outline(parsed);
    expect(o.name).toBeUndefined();
    expect(o.index).toBe(2);
    expect(o.args).toEqual([
      { name: 'GO_VERSION', value: '1.22', description: 'selects the toolchain', line: 3, global: true },
      { name: 'LDFLAGS', value: '-s -w', description: 'are passed to the linker', line: 9, global: false },
    ]);
    expect(o.secrets).toEqual([{ id: 'netrc', required: false, line: 10 }]);
    expect(o.ssh).toEqual([{ id: 'default', required: false, line: 10 }]);
    expect(o.stages.map((s) => s.base)).toEqual(['golang:1.22', 'scratch']);
  });
  it('named target with build args; a secret required anywhere is required', () => {
    const o = outline(parsed, { target: 'test', buildArgs: { GO_VERSION: '1.23', TEST_FLAGS: '-race' } });
    expect(o.name).toBe('test');
    expect(o.description).toBe('Runs the tests');
    expect(o.args.map((a) => [a.name, a.value])).toEqual([['GO_VERSION', '1.23'], ['LDFLAGS', '-s -w'], ['TEST_FLAGS', '-race']]);
    expect(o.secrets).toEqual([{ id: 'netrc', required: true, line: 10 }]);
  });
});

describe('listTargets', () => {
  it('named stages and the default last stage, with descriptions', () => {
    expect(listTargets(parsed)).toEqual([
      { index: 0, name: 'build', description: 'compiles the binary', base: 'golang:${GO_VERSION}', line: 7, default: false },
      { index: 1, name: 'test', description: 'Runs the tests', base: 'build', line: 13, default: false },
      { index: 2, base: 'scratch', line: 17, default: true },
    ]);
  });
});
