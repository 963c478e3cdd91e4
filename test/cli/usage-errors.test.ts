import { beforeAll, describe, expect, it } from 'vitest';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';

beforeAll(() => rebuildIfStale(['cli/main', 'cli/usage-error', 'cli/commands/build']), 120_000);

describe('command-line errors', () => {
  it('an unknown flag prints two lines with a suggestion, never the help', async () => {
    const r = await runKiln(['build', '--fil', 'Dockerfile', '.']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("kiln build: unknown option '--fil' (did you mean '--file'?)\nRun 'kiln build --help' for usage.\n");
    expect(r.stdout).toBe('');
  });

  it('an unknown flag without a close match', async () => {
    const r = await runKiln(['build', '--foo', '.']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n').filter(Boolean)).toEqual(["kiln build: unknown option '--foo'", "Run 'kiln build --help' for usage."]);
  });

  it('a missing argument or option value is one line plus the hint', async () => {
    const noContext = await runKiln(['build']);
    expect(noContext.code).toBe(2);
    expect(noContext.stderr).toBe("kiln build: missing required argument 'context'\nRun 'kiln build --help' for usage.\n");
    const noValue = await runKiln(['build', '.', '-f']);
    expect(noValue.stderr.split('\n').filter(Boolean)).toHaveLength(2);
    expect(noValue.stderr).toMatch(/^kiln build: option '-f, --file <path>' argument missing\n/);
  });

  it('an unknown command suggests the closest one', async () => {
    const r = await runKiln(['buidl', '.']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe("kiln: unknown command 'buidl' (did you mean 'build'?)\nRun 'kiln --help' for usage.\n");
  });

  it('an unknown -o attribute is named', async () => {
    const r = await runKiln(['build', '-o', 'type=local,dest=out,colour=red', '.']);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^kiln: invalid --output "type=local,dest=out,colour=red": unknown attribute "colour"/);
  });
});
