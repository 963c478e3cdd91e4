import { execFileSync, spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { runSandbox, type SandboxRequest } from '../../src/sandbox/sandbox.js';
import { sweepMounts } from '../../src/sandbox/scratch.js';
import { listContainers } from '../../src/sandbox/runtime.js';
import { leftovers, makeEnv, type TestEnv } from './fixtures.js';

let env: TestEnv;
const mine = (ids: string[], pid: number): string[] => ids.filter((c) => c.startsWith(`kiln-r${pid.toString(36)}.`));

/** A RUN of `args` on the test rootfs with no environment, from /, on the host network. */
const onTestRootfs = (args: string[]): SandboxRequest => ({ storeRoot: env.root, lowerdirs: [env.lower], args, env: [], workdir: '/', network: 'host' });

/** No mount, runc container, cgroup or scratch dir of this process is left. */
async function expectNothingLeft(): Promise<void> {
  const l = await leftovers(env.root);
  expect(l.mounts).toEqual([]);
  expect(mine(l.containers, process.pid)).toEqual([]);
  expect(mine(l.cgroups, process.pid)).toEqual([]);
  expect(l.tmp).toEqual([]);
}

beforeAll(() => {
  env = makeEnv();
});
afterAll(() => env.cleanup());

describe('cleanup', () => {
  test('aborting mid-RUN kills the container and leaves no mounts, containers or scratch dirs', async () => {
    const ac = new AbortController();
    let sawStart = false;
    const p = runSandbox({
      ...onTestRootfs(['/bin/sh', '-c', 'echo started; echo data > /tmp/file; sleep 60']),
      mounts: [{ type: 'secret', id: 's', data: Buffer.from('x') }, { type: 'cache', target: '/cache' }],
      signal: ac.signal,
      onOutput: (_s, line) => {
        if (line === 'started') {
          sawStart = true;
          ac.abort();
        }
      },
    });
    const err = await p.then(() => undefined, (e: unknown) => e);
    expect(sawStart).toBe(true);
    expect(isKilnError(err) && err.code).toBe('CANCELLED');
    await expectNothingLeft();
  });

  test('ten RUNs aborted at different moments (setup, container start, mid-run) leave nothing behind', async () => {
    for (let i = 0; i < 10; i++) {
      const ac = new AbortController();
      const p = runSandbox({
        ...onTestRootfs(['/bin/sh', '-c', 'echo started; sleep 60']),
        network: i % 2 ? 'none' : 'host',
        mounts: [{ type: 'tmpfs', target: '/t' }, { type: 'cache', target: '/c', id: 'abort-cache', sharing: 'locked' }],
        signal: ac.signal,
        onOutput: () => ac.abort(),
      });
      // abort points: synchronously, after i event-loop turns (during setup or container creation), or on first output
      if (i === 0) ac.abort();
      else if (i < 6) for (let k = 0; k < i * 3; k++) await new Promise((r) => setImmediate(r));
      if (i > 0 && i < 6) ac.abort();
      const err = await p.then(() => undefined, (e: unknown) => e);
      expect(isKilnError(err) && err.code).toBe('CANCELLED');
    }
    await expectNothingLeft();
    const strays = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((a) => a.includes('kiln-r') && a.includes(process.pid.toString(36)));
    expect(strays).toEqual([]);
  });

  test('an AbortSignal already aborted never starts a container', async () => {
    const err = await runSandbox({ ...onTestRootfs(['true']), signal: AbortSignal.abort() }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isKilnError(err) && err.code).toBe('CANCELLED');
  });

  test('sweepMounts cleans up after a kiln process killed with SIGKILL mid-RUN', async () => {
    // The child runs compiled JavaScript: plain node cannot load the TypeScript sources.
    const out = resolve('node_modules/.cache', `kiln-sandbox-test-${process.pid}`);
    execFileSync('npx', ['tsc', 'src/sandbox/index.ts', '--outDir', out, '--rootDir', 'src', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--skipLibCheck', '--types', 'node', '--ignoreConfig'], { stdio: 'ignore' });
    try {
      const script = join(out, 'child.mjs');
      writeFileSync(
        script,
        `import { runSandbox } from './sandbox/index.js';
await runSandbox({ storeRoot: ${JSON.stringify(env.root)}, lowerdirs: [${JSON.stringify(env.lower)}], args: ['/bin/sh', '-c', 'echo started; sleep 120'],
  env: [], workdir: '/', network: 'none', mounts: [{ type: 'secret', id: 'tok', data: Buffer.from('t') }],
  onOutput: (_s, l) => process.stdout.write(l + '\\n') });
`,
      );
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((res, rej) => {
        let buf = '';
        child.stdout.on('data', (d: Buffer) => {
          buf += d.toString();
          if (buf.includes('started')) res();
        });
        child.on('exit', (code) => rej(new Error(`child exited early with ${code}`)));
      });
      const childPid = child.pid as number;
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));

      const before = await leftovers(env.root);
      expect(before.mounts.length).toBeGreaterThan(0);
      expect(mine(before.containers, childPid)).toHaveLength(1);

      const report = await sweepMounts(env.root);
      expect(report.containers).toHaveLength(1);
      expect(report.unmounted.length).toBeGreaterThan(0);
      expect(report.removed).toHaveLength(1);

      const after = await leftovers(env.root);
      expect(after.mounts).toEqual([]);
      expect(mine(await listContainers(), childPid)).toEqual([]);
      expect(mine(after.cgroups, childPid)).toEqual([]);
      expect(after.tmp).toEqual([]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
