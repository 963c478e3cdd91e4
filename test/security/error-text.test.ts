import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { KilnError, printable } from '../../src/errors/index.js';
import { runFailure } from '../../src/steps/run.js';
import { bench, type Bench } from '../builder/helpers.js';

/**
 * What a hostile RUN prints ends up in kiln's error message: it must arrive
 * as one visible, bounded line; and a RUN the kernel kills for memory says so.
 */

describe('printable', () => {
  test('escapes terminal controls and bidi overrides, flattens lines, bounds the length', () => {
    expect(printable('a\x1b]0;pwned\x07b\x1b[2Jc')).toBe('a\\x1b]0;pwned\\x07b\\x1b[2Jc');
    expect(printable('x\u202etxt.exe\u2066')).toBe('x\\u202etxt.exe\\u2066');
    expect(printable('one\ntwo\r\nthree\tfour')).toBe('one two  three four');
    expect(printable('\x9b31m')).toBe('\\x9b31m');
    expect(printable('héllo wörld ✓')).toBe('héllo wörld ✓');
    const long = printable('z'.repeat(1_000_000), 100);
    expect(long).toHaveLength(100);
    expect(long.endsWith('…')).toBe(true);
  });

  test('every KilnError message and hint is printable', () => {
    const e = new KilnError('REGISTRY', `registry said: \x1b[31m${'x'.repeat(10_000)}`, { hint: 'try\x1b[1A' });
    expect(e.message).not.toMatch(/\x1b/);
    expect(e.message.length).toBeLessThanOrEqual(4000);
    expect(e.hint).toBe('try\\x1b[1A');
  });
});

describe('RUN failures', () => {
  let b: Bench;
  beforeAll(async () => {
    b = await bench();
  });
  afterAll(async () => b.cleanup());

  test('output quoted in the error has no raw control bytes and bounded lines', async () => {
    const ctx = await b.context({
      Dockerfile: 'FROM localhost/busybox:latest\nRUN printf "evil\\033]0;title\\007\\033[2Jgone\\n"; head -c 100000 /dev/zero | tr "\\0" y; echo; exit 3\n',
    });
    const err = (await b.build(ctx).catch((e: unknown) => e)) as KilnError;
    expect(err.code).toBe('RUN_FAILED');
    expect(err.message).toContain('exit code 3');
    expect(err.message).toContain('evil\\x1b]0;title\\x07\\x1b[2Jgone');
    expect(err.message).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(err.message.length).toBeLessThan(1500);
    expect(runFailure(err.cause)?.exitCode).toBe(3);
  });

  test('a RUN killed by the OOM killer says so, with the limit', async () => {
    // the shell holds 256 MiB in a variable under a 32 MiB limit
    const ctx = await b.context({ Dockerfile: 'FROM localhost/busybox:latest\nRUN x="$(head -c 268435456 /dev/zero | tr "\\0" a)"; echo survived\n' });
    const err = (await b.build(ctx, { limits: { memory: 32 * 1024 * 1024 } }).catch((e: unknown) => e)) as KilnError;
    expect(err.code).toBe('RUN_FAILED');
    expect(err.format()).toMatch(/^Dockerfile:2: RUN was killed: out of memory \(limit 32\.0 MiB\)/);
    expect(runFailure(err.cause)?.exitCode).toBe(137);
  });

  test('an ordinary exit 137 (a SIGKILLed command) is not called out of memory', async () => {
    const ctx = await b.context({ Dockerfile: "FROM localhost/busybox:latest\nRUN sh -c 'kill -9 $$'; exit $?\n" });
    const err = (await b.build(ctx, { limits: { memory: 32 * 1024 * 1024 } }).catch((e: unknown) => e)) as KilnError;
    expect(err.code).toBe('RUN_FAILED');
    expect(err.message).not.toContain('out of memory');
    expect(err.message).toContain('exit code 137');
  });
});
