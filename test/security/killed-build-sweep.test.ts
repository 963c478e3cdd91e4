import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listContainers } from '../../src/sandbox/runtime.js';
import { isScratchName } from '../../src/store/layout.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';
import { KILN_BIN, rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';

/**
 * A build SIGKILLed during `RUN sleep` leaves its runc container running on
 * an overlay mounted in the store's tmp/. A later non-build command must not
 * delete files beneath that mount: fsck reports the container and the mount
 * (and changes nothing), any other command stops the container, unmounts and
 * only then removes the scratch dir.
 */
let b: Bench;
/**
 * runc's state is machine-wide, and kiln processes of other stores (parallel
 * test files) sweep what they see there: this test's kiln processes use a
 * runc with a private state directory, through a wrapper first on PATH.
 */
let env: NodeJS.ProcessEnv;
let runcRoot: string;

beforeAll(async () => {
  await rebuildIfStale(['cli/store-from-options', 'cli/commands/fsck', 'store/fsck', 'store/store', 'sandbox/scratch']);
  b = await bench();
  const bin = path.join(b.dir, 'bin');
  runcRoot = path.join(b.dir, 'runc-state');
  await mkdir(bin, { recursive: true });
  await writeFile(path.join(bin, 'runc'), `#!/bin/sh\nexec ${execFileSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).trim()} --root ${runcRoot} "$@"\n`, { mode: 0o755 });
  env = { PATH: `${bin}:${process.env['PATH'] ?? ''}` };
  // this process must not hold the store: a non-build command sweeps only when it is alone
  await b.release();
});
afterAll(async () => {
  await b?.cleanup();
});

async function mountsUnderRoot(): Promise<string[]> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').map((l) => l.split(' ')[4] ?? '').filter((mp) => mp.startsWith(`${b.root}/`));
}

describe('a non-build command after a SIGKILLed build', () => {
  it('fsck reports the live container and mount without touching them; the next command stops, unmounts and cleans', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo kept > /marker && echo $((6*7))-ready && sleep 120\n` });
    const child = spawn(process.execPath, [KILN_BIN, '--root', b.root, 'build', '--progress', 'plain', '--no-cache', ctx], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let err = '';
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        err += d.toString();
        if (err.includes('42-ready')) resolve();
      });
      child.on('close', () => reject(new Error(`build ended before its RUN started: ${err}`)));
    });
    child.kill('SIGKILL');
    await new Promise((r) => child.once('close', r));

    const tmp = path.join(b.root, 'tmp');
    // two scratch dirs of the killed process: the build's own (read-only --mount views) and the RUN's, whose container is running
    const scratch = (await readdir(tmp)).filter(isScratchName);
    expect(scratch).toHaveLength(2);
    const running = await listContainers({ stateRoot: runcRoot });
    const owners = scratch.filter((n) => running.includes(`kiln-${n}`));
    expect(owners).toHaveLength(1);
    const container = `kiln-${owners[0]}`;
    const mounts = await mountsUnderRoot();
    expect(mounts.length).toBeGreaterThan(0);
    const rootfs = mounts.find((mp) => existsSync(path.join(mp, 'bin', 'busybox')))!;
    expect(rootfs).toBeDefined();
    expect(await readFile(path.join(rootfs, 'marker'), 'utf8')).toBe('kept\n');

    const fsck = await runKiln(['--root', b.root, 'fsck'], { env });
    expect(fsck.code).toBe(1);
    expect(fsck.stdout).toContain(`live-leftover: container ${container} of a kiln process that is gone still exists`);
    expect(fsck.stdout).toContain(`live-leftover: ${rootfs} is still mounted by a kiln process that is gone`);
    // nothing beneath the live mount was deleted, the container still runs
    expect(await readFile(path.join(rootfs, 'marker'), 'utf8')).toBe('kept\n');
    expect(existsSync(path.join(rootfs, 'bin', 'busybox'))).toBe(true);
    expect(await listContainers({ stateRoot: runcRoot })).toContain(container);

    const images = await runKiln(['--root', b.root, 'images'], { env });
    expect(images.stderr).toBe('');
    expect(images.code).toBe(0);
    expect(await listContainers({ stateRoot: runcRoot })).not.toContain(container);
    expect(await mountsUnderRoot()).toEqual([]);
    expect((await readdir(tmp)).filter((n) => n !== 'partial')).toEqual([]);

    const again = await runKiln(['--root', b.root, 'fsck'], { env });
    expect(again.stdout).toMatch(/: ok\n$/);
    expect(again.code).toBe(0);
  });
});
