import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { bench, BASE, type Bench } from '../builder/helpers.js';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import type { KilnError } from '../../src/errors/index.js';
import type { BuildEvent } from '../../src/events/index.js';

/**
 * Entitlements are granted by whoever starts the build, never by the
 * Dockerfile: a RUN --security=insecure or --network=host the build does not
 * allow fails with one line naming it, before any step has run (BuildKit's
 * ValidateEntitlements), including when it comes from a base image's ONBUILD.
 */

const CAP_SYS_ADMIN = 21n;
/** Whether the RUN that wrote `/proc/self/status` to `text` had CAP_SYS_ADMIN in its effective set. */
function hasSysAdmin(status: string): boolean {
  const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(status);
  if (!m) throw new Error(`no CapEff in ${status}`);
  return ((BigInt(`0x${m[1]}`) >> CAP_SYS_ADMIN) & 1n) === 1n;
}

let b: Bench;
beforeAll(async () => {
  await rebuildIfStale(['cli/commands/build', 'builder/build', 'builder/resolve-options', 'steps/entitlements', 'steps/validate-entitlements', 'steps/run', 'steps/run-security', 'steps/run-network']);
  b = await bench();
});
afterAll(async () => b.cleanup());

const insecureDockerfile = `FROM ${BASE}\nRUN echo first > /first\nRUN --security=insecure cat /proc/self/status > /status\n`;

describe('security.insecure', () => {
  test('without --allow the build fails at the RUN\'s line before any step runs', async () => {
    const ctx = await b.context({ Dockerfile: insecureDockerfile });
    const events: BuildEvent[] = [];
    const err = (await b.build(ctx, { tags: ['localhost/ent:denied'], onEvent: (e) => events.push(e) }).catch((e: unknown) => e)) as KilnError;
    expect(err.code).toBe('USAGE');
    expect(err.format()).toBe('Dockerfile:3: RUN --security=insecure needs --allow security.insecure (security.insecure is not allowed)');
    // not even the harmless RUN on line 2 ran, and nothing was tagged
    expect(events.filter((e) => e.type === 'step-start' || e.type === 'step-done' || e.type === 'build-start')).toEqual([]);
    const store = await b.store();
    expect(await store.resolveImage('localhost/ent:denied')).toBeUndefined();
    await b.release();
  });

  test('with --allow security.insecure the RUN has every capability; a sandboxed RUN does not', async () => {
    const ctx = await b.context({ Dockerfile: `${insecureDockerfile}RUN cat /proc/self/status > /sandboxed\n` });
    await b.build(ctx, { tags: ['localhost/ent:insecure'], allow: ['security.insecure'] });
    expect(hasSysAdmin(await b.read('localhost/ent:insecure', 'status'))).toBe(true);
    expect(hasSysAdmin(await b.read('localhost/ent:insecure', 'sandboxed'))).toBe(false);
    await b.release();
  });

  test('a base image\'s ONBUILD RUN --security=insecure is checked when the child build reaches it', async () => {
    const base = await b.context({ Dockerfile: `FROM ${BASE}\nONBUILD RUN --security=insecure cat /proc/self/status > /status\n` });
    // the trigger does not run in the base's own build, so it needs nothing there
    await b.build(base, { tags: ['localhost/ent:onbuild-base'] });
    const child = await b.context({ Dockerfile: 'FROM localhost/ent:onbuild-base\nRUN true\n' });
    const err = (await b.build(child, { tags: ['localhost/ent:onbuild-denied'] }).catch((e: unknown) => e)) as KilnError;
    expect(err.code).toBe('USAGE');
    expect(err.message).toBe('RUN --security=insecure needs --allow security.insecure (security.insecure is not allowed)');
    await b.build(child, { tags: ['localhost/ent:onbuild-allowed'], allow: ['security.insecure'] });
    expect(hasSysAdmin(await b.read('localhost/ent:onbuild-allowed', 'status'))).toBe(true);
    await b.release();
  });
});

describe('network.host', () => {
  test('--network host grants RUN --network=host (as buildx adds the entitlement); --network none does not', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN --network=host ls /sys/class/net > /ifaces\n` });
    await b.build(ctx, { tags: ['localhost/ent:host'], network: 'host' });
    // the host's interfaces, not the RUN's own namespace (lo and tap0 only)
    expect((await b.read('localhost/ent:host', 'ifaces')).split('\n').filter(Boolean)).not.toEqual(['lo', 'tap0']);
    await b.release();
    const err = (await b.build(ctx, { tags: ['localhost/ent:none'], network: 'none' }).catch((e: unknown) => e)) as KilnError;
    expect(err.format()).toBe('Dockerfile:2: RUN --network=host needs --allow network.host (network.host is not allowed)');
  });
});

describe('kiln build --allow', () => {
  test('a denied RUN exits 2 with one line; --allow lets the same build through', async () => {
    await b.release();
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN --security=insecure cat /proc/self/status > /status\n` });
    const denied = await runKiln(['--root', b.root, 'build', '--progress', 'plain', '-t', 'localhost/ent:cli', ctx]);
    expect(denied.code).toBe(2);
    expect(denied.stderr).toMatch(/^kiln: Dockerfile:2: RUN --security=insecure needs --allow security\.insecure \(security\.insecure is not allowed\)$/m);
    const allowed = await runKiln(['--root', b.root, 'build', '--progress', 'plain', '--allow', 'security.insecure', '-t', 'localhost/ent:cli', ctx]);
    expect(allowed.stderr).not.toMatch(/^kiln:/m);
    expect(allowed.code).toBe(0);
    expect(hasSysAdmin(await b.read('localhost/ent:cli', 'status'))).toBe(true);
    await b.release();
  });

  test('an unknown entitlement is a usage error naming it', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\n` });
    const r = await runKiln(['--root', b.root, 'build', '--allow', 'device', ctx]);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('kiln: unknown entitlement "device" in --allow (known: network.host, security.insecure)\n');
  });
});
