import { describe, expect, test } from 'vitest';
import { parseDockerfile } from '../../src/frontend/index.js';
import { KilnError } from '../../src/errors/index.js';
import { parseEntitlements } from '../../src/steps/entitlements.js';
import { runNetwork } from '../../src/steps/run-network.js';
import { runInsecure } from '../../src/steps/run-security.js';
import type { RunPolicy } from '../../src/steps/run-policy.js';
import { validateEntitlements } from '../../src/steps/validate-entitlements.js';

const policy = (over: Partial<RunPolicy> = {}): RunPolicy => ({ network: 'default', entitlements: new Set(), secrets: [], ssh: [], ...over });

describe('RUN --network and --security against the build policy', () => {
  test('a RUN without --network (or with default) gets the build\'s network', () => {
    expect(runNetwork({}, policy())).toBe('default');
    expect(runNetwork({ network: 'default' }, policy({ network: 'none' }))).toBe('none');
    expect(runNetwork({}, policy({ network: 'host', entitlements: new Set(['network.host']) }))).toBe('host');
  });

  test('a RUN may always ask for less: none needs nothing', () => {
    expect(runNetwork({ network: 'none' }, policy({ network: 'host', entitlements: new Set(['network.host']) }))).toBe('none');
  });

  test('host needs network.host; insecure needs security.insecure', () => {
    expect(() => runNetwork({ network: 'host' }, policy())).toThrow('RUN --network=host needs --allow network.host (network.host is not allowed)');
    expect(runNetwork({ network: 'host' }, policy({ entitlements: new Set(['network.host']) }))).toBe('host');
    expect(() => runInsecure({ security: 'insecure' }, policy({ entitlements: new Set(['network.host']) }))).toThrow('RUN --security=insecure needs --allow security.insecure (security.insecure is not allowed)');
    expect(runInsecure({ security: 'insecure' }, policy({ entitlements: new Set(['security.insecure']) }))).toBe(true);
    expect(runInsecure({ security: 'sandbox' }, policy())).toBe(false);
    expect(runInsecure({}, policy())).toBe(false);
  });

  test('--allow parses known names only', () => {
    expect([...parseEntitlements(['security.insecure'])]).toEqual(['security.insecure']);
    expect(() => parseEntitlements(['network.host', 'network.none'])).toThrow(KilnError);
  });
});

describe('validateEntitlements over a Dockerfile', () => {
  const instructions = (text: string) => parseDockerfile(text, { file: 'Dockerfile' }).instructions;

  test('the first RUN asking for more than allowed is named by its line', () => {
    const df = 'FROM scratch\nRUN true\nRUN --network=none true\nRUN --security=insecure true\nRUN --network=host true\n';
    let err: unknown;
    try {
      validateEntitlements(instructions(df), policy(), 'Dockerfile');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe('USAGE');
    expect((err as KilnError).format()).toBe('Dockerfile:4: RUN --security=insecure needs --allow security.insecure (security.insecure is not allowed)');
    expect(() => validateEntitlements(instructions(df), policy({ entitlements: new Set(['security.insecure']) }), 'Dockerfile')).toThrow(/^RUN --network=host needs --allow network\.host/);
    expect(() => validateEntitlements(instructions(df), policy({ entitlements: new Set(['security.insecure', 'network.host']) }), 'Dockerfile')).not.toThrow();
  });

  test('an ONBUILD trigger is not run by this build, so it is not checked here', () => {
    expect(() => validateEntitlements(instructions('FROM scratch\nONBUILD RUN --security=insecure true\n'), policy(), 'Dockerfile')).not.toThrow();
  });
});
