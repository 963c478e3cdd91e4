import { describe, expect, it } from 'vitest';
import { parseCheckConfig, parseDockerfile } from '../../src/frontend/index.js';

const directive = (value: string) => parseDockerfile(`# check=${value}\nFROM scratch\n`, { file: 'Dockerfile' }).directives.check;

/** The `# check=` directive and the BUILDKIT_DOCKERFILE_CHECK build argument are read by one parser. */
describe('check options', () => {
  it('reads skip lists and error the same way in both places', () => {
    for (const value of ['skip=JSONArgsRecommended, StageNameCasing ;error=TRUE', 'skip=all;experimental=all', ' ; error=false']) {
      expect(parseCheckConfig(value)).toEqual(directive(value));
    }
    expect(parseCheckConfig('skip=A,All')).toEqual({ skip: 'all', error: false });
  });

  it('refuses a malformed directive naming the line, and skips the same part in the build argument', () => {
    for (const [value, message] of [
      ['error=maybe', 'invalid value "maybe" for check directive error'],
      ['skip=A;bogus=1', 'unknown check directive option "bogus"'],
      ['skipA', 'invalid check directive "skipA"'],
    ] as const) {
      expect(() => directive(value)).toThrow(message);
      expect(() => directive(value)).toThrow(expect.objectContaining({ code: 'DOCKERFILE_PARSE', location: { file: 'Dockerfile', line: 1 } }));
      expect(() => parseCheckConfig(value)).not.toThrow();
    }
    expect(parseCheckConfig('skip=A;bogus=1;error=maybe')).toEqual({ skip: ['A'], error: false });
  });
});
