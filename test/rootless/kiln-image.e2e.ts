import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { listOciArchive } from './image-listing.js';
// the bench's Debian bookworm base: debootstrap from Debian's mirror, cached, as an OCI layout
// @ts-expect-error plain ESM without types
import { debianLayout, pushLayout } from '../../bench/lib/bases.mjs';

/**
 * `npm run test:image` (not part of `npm test`: it downloads Debian packages,
 * Node and npm): kiln builds its own image from the repository's Dockerfile,
 * podman runs it as uid 1000 without added capabilities, and kiln inside
 * builds and pushes an image to the test registry.
 */
const reg = inject('registry');
const REPO = resolve(import.meta.dirname, '..', '..');
const CACHE = process.env['KILN_TEST_IMAGE_CACHE'] ?? '/var/lib/kiln-test/image';

function sh(cmd: string, args: string[]): Promise<KilnRun> {
  return new Promise((res) => execFile(cmd, args, { maxBuffer: 64 << 20 }, (err, stdout, stderr) => res({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr })));
}

const ok = (r: KilnRun): KilnRun => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.stderr.slice(-3000)}`);
  return r;
};

describe('kiln in a container', () => {
  let dir: string;
  let podmanArgs: string[] | undefined;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'kiln-image-'));
    mkdirSync(CACHE, { recursive: true });
    const layout = (await debianLayout(CACHE, (m: string) => process.stderr.write(`${m}\n`))) as { dir: string; tag: string };
    await pushLayout(layout, `${reg.anon}/debian:bookworm`, join(dir, 'skopeo.log'));
    const podmanRoot = join(dir, 'podman');
    podmanArgs = ['--root', join(podmanRoot, 'root'), '--runroot', join(podmanRoot, 'run'), '--storage-driver', 'overlay', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  }, 1_800_000);
  afterAll(async () => {
    // podman's state exists only when the setup got that far
    if (podmanArgs) await sh('podman', [...podmanArgs, 'system', 'reset', '--force']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('builds its own image, which builds and pushes an image as uid 1000 under podman', async () => {
    if (!podmanArgs) throw new Error('the setup did not finish');
    const podman = podmanArgs;
    const store = join(dir, 'store');
    // the machine's CA bundle (it may hold a proxy's CA the Debian image does not know), for npm in the image
    ok(await runKiln(['--root', store, 'build', '--secret', 'id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt', '--build-arg', `BASE=${reg.anon}/debian:bookworm`, '-t', 'localhost/kiln:dev', '--output', `type=docker,dest=${join(dir, 'kiln.tar')}`, REPO]));
    ok(await sh('podman', [...podman, 'load', '-i', join(dir, 'kiln.tar')]));

    const ctx = join(dir, 'ctx');
    mkdirSync(ctx);
    writeFileSync(join(ctx, 'Dockerfile'), 'FROM ' + `${reg.anon}/debian:bookworm` + '\nRUN --network=none useradd -u 4321 app && mkdir /data && chown 4321:4321 /data && cat /proc/1/comm > /data/pid1\nCOPY --chown=33:33 hello /hello\n');
    writeFileSync(join(ctx, 'hello'), 'hi\n');
    chmodSync(ctx, 0o755);
    const run = (extra: string[], ref: string): Promise<KilnRun> => sh('podman', [
      ...podman, 'run', '--rm', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096',
      '--user', '1000:1000', '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--network', 'host',
      ...extra, '-v', `${ctx}:/ctx:ro`, 'localhost/kiln:dev', 'build', '-t', ref, '--push', '/ctx',
    ]);

    // exactly the documented command: podman masks /proc, so the RUN cannot have its own; one line says what to do
    const masked = await run([], `${reg.anon}/app:1`);
    expect(masked.code).toBe(1);
    expect(masked.stderr).toMatch(/^kiln: Dockerfile:2: rootless: \/proc is masked here \(\/proc\/\S+ is mounted over\), so a RUN cannot mount its own \/proc .*KILN_NO_PROCESS_SANDBOX=1/m);

    // the fallback: RUN shares kiln's pid namespace
    ok(await run(['-e', 'KILN_NO_PROCESS_SANDBOX=1'], `${reg.anon}/app:1`));
    // an unmasked /proc: RUN gets its own pid namespace
    ok(await run(['--security-opt', 'unmask=/proc/*'], `${reg.anon}/app:2`));

    for (const [tag, ownPid] of [['1', false], ['2', true]] as const) {
      const out = join(dir, `app-${tag}.tar`);
      ok(await runKiln(['--root', store, 'pull', `${reg.anon}/app:${tag}`]));
      ok(await runKiln(['--root', store, 'save', '-o', out, `${reg.anon}/app:${tag}`]));
      const files = listOciArchive(out);
      expect(files.get('data')).toMatchObject({ uid: 4321, gid: 4321 });
      expect(files.get('hello')).toMatchObject({ uid: 33, gid: 33 });
      const x = join(dir, `x-${tag}`);
      mkdirSync(x);
      writeFileSync(join(x, 'Dockerfile'), `FROM ${reg.anon}/app:${tag}\n`);
      ok(await runKiln(['--root', store, 'build', '--output', `type=local,dest=${join(x, 'fs')}`, x]));
      // pid 1 of the RUN's pid namespace is its shell; without a process sandbox it is the container's init (kiln)
      const pid1 = readFileSync(join(x, 'fs', 'data', 'pid1'), 'utf8').trim();
      if (ownPid) expect(pid1).toBe('sh');
      else expect(pid1).not.toBe('sh');
    }
  }, 1_800_000);
});
