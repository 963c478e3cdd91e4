import { execFileSync } from 'node:child_process';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { bench, type Bench } from './helpers.js';
import { makeBusyboxIndex } from '../helpers/busybox.js';
import { runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { uniqueRepo } from '../registry/helpers/images.js';
import type { Index } from '../../src/image/types.js';
import { parseCacheFrom, parseCacheTo } from '../../src/cache/spec.js';

const reg = inject('registry');
const MULTI = 'localhost/busybox-multi:latest';
const DOCKERFILE = `FROM --platform=$BUILDPLATFORM ${MULTI} AS tools
RUN uname -m > /host-arch
FROM ${MULTI}
ARG TARGETPLATFORM
RUN uname -m > /arch && echo "$TARGETPLATFORM" > /target
COPY --from=tools /host-arch /
`;

let b: Bench;
let ctx: string;
const kiln = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<KilnRun> => runKiln(['--root', b.root, ...args], { env });
const ok = (r: KilnRun): KilnRun => {
  expect(r.code, r.stderr).toBe(0);
  return r;
};

beforeAll(async () => {
  b = await bench();
  await makeBusyboxIndex(await b.store(), MULTI);
  await b.release();
  ctx = await b.context({ Dockerfile: DOCKERFILE });
});
afterAll(async () => {
  await b?.cleanup();
});

describe('kiln build --platform (CLI)', () => {
  it('--push sends the index and every manifest; skopeo and umoci read each platform back', async () => {
    const ref = `${reg.anon}/${uniqueRepo('multi')}:1`;
    ok(await kiln(['--insecure-registry', reg.anon, 'build', '--platform', 'linux/amd64,linux/arm64', '-t', ref, '--push', '--progress', 'plain', ctx]));

    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' })) as Index;
    expect(raw.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const platforms = raw.manifests.filter((m) => m.platform?.os !== 'unknown').map((m) => `${m.platform?.os}/${m.platform?.architecture}`);
    expect(platforms).toEqual(['linux/amd64', 'linux/arm64']);

    for (const [arch, uname] of [['amd64', 'x86_64'], ['arm64', 'aarch64']] as const) {
      const layout = join(b.dir, `layout-${arch}`);
      execFileSync('skopeo', ['copy', '--quiet', '--override-arch', arch, '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:img`]);
      const bundle = join(b.dir, `bundle-${arch}`);
      execFileSync('umoci', ['unpack', '--rootless', '--image', `${layout}:img`, bundle], { stdio: 'pipe' });
      expect(await readFile(join(bundle, 'rootfs', 'arch'), 'utf8')).toBe(`${uname}\n`);
      expect(await readFile(join(bundle, 'rootfs', 'target'), 'utf8')).toBe(`linux/${arch}\n`);
      // the cross-compile stage ran on the host for both
      expect(await readFile(join(bundle, 'rootfs', 'host-arch'), 'utf8')).toBe('x86_64\n');
      const config = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${layout}:img`], { encoding: 'utf8' })) as { architecture: string };
      expect(config.architecture).toBe(arch);
    }

    // podman picks the arm64 image out of the pushed index and runs it through the same binfmt_misc handler;
    // explicit rlimits because podman's defaults exceed the hard limits of some CI machines; its store lives in the test dir
    const podmanRoot = join(b.dir, 'podman');
    const podman = [
      '--root', join(podmanRoot, 'root'), '--runroot', join(podmanRoot, 'run'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file',
      'run', '--rm', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=512:512', '--platform', 'linux/arm64', '--tls-verify=false', '--network', 'none', ref, 'sh', '-c', 'uname -m; cat /target',
    ];
    expect(execFileSync('podman', podman, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })).toBe('aarch64\nlinux/arm64\n');
  });

  it('type=local and type=tar write one directory per platform, type=oci the index; type=docker is refused', async () => {
    const local = join(b.dir, 'out-local');
    const tar = join(b.dir, 'out.tar');
    const oci = join(b.dir, 'out-oci.tar');
    ok(await kiln(['build', '--platform', 'linux/amd64,linux/arm64', '-t', 'localhost/outputs:1', '-o', `type=local,dest=${local}`, '-o', `type=tar,dest=${tar}`, '-o', `type=oci,dest=${oci}`, ctx]));
    expect((await readdir(local)).sort()).toEqual(['linux_amd64', 'linux_arm64']);
    expect(await readFile(join(local, 'linux_arm64', 'arch'), 'utf8')).toBe('aarch64\n');
    expect(await readFile(join(local, 'linux_amd64', 'arch'), 'utf8')).toBe('x86_64\n');
    // the platforms' directories are ordinary ones, open to others as the image's own are
    for (const p of ['linux_amd64', 'linux_arm64']) expect((await stat(join(local, p))).mode & 0o005).toBe(0o005);
    const untar = join(b.dir, 'untar');
    await mkdir(untar);
    execFileSync('tar', ['-xf', tar, '-C', untar]);
    expect(await readFile(join(untar, 'linux_arm64', 'target'), 'utf8')).toBe('linux/arm64\n');
    expect(await readFile(join(untar, 'linux_amd64', 'target'), 'utf8')).toBe('linux/amd64\n');
    const archived = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci-archive:${oci}`], { encoding: 'utf8' })) as Index;
    expect(archived.manifests.map((m) => m.platform?.architecture)).toEqual(['amd64', 'arm64']);
    const arm = JSON.parse(execFileSync('skopeo', ['inspect', '--override-arch', 'arm64', `oci-archive:${oci}`], { encoding: 'utf8' })) as { Architecture: string };
    expect(arm.Architecture).toBe('arm64');

    const docker = await kiln(['build', '--platform', 'linux/amd64,linux/arm64', '-o', `type=docker,dest=${join(b.dir, 'd.tar')}`, ctx]);
    expect(docker.code).toBe(2);
    expect(docker.stderr.split('\n').filter((l) => l.startsWith('kiln:'))).toEqual(['kiln: --output type=docker holds one platform, and this build makes 2 (linux/amd64, linux/arm64): use type=oci, or build one --platform for the docker archive']);
  });

  it('images and inspect show the index and its platforms; run --platform runs the arm64 image under emulation', async () => {
    ok(await kiln(['build', '--platform', 'linux/amd64,linux/arm64', '-t', 'localhost/runme:1', ctx]));
    const images = JSON.parse(ok(await kiln(['images', '--json'])).stdout) as Array<{ ref: string; platforms?: string[] }>;
    expect(images.find((i) => i.ref === 'localhost/runme:1')?.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    expect(ok(await kiln(['inspect', 'localhost/runme:1'])).stdout).toMatch(/^Platforms:\s+linux\/amd64, linux\/arm64$/m);
    const arm = ok(await kiln(['inspect', '--platform', 'linux/arm64', '--json', 'localhost/runme:1']));
    expect((JSON.parse(arm.stdout) as { config: { architecture: string } }).config.architecture).toBe('arm64');

    expect(ok(await kiln(['run', '--platform', 'linux/arm64', 'localhost/runme:1', 'uname', '-m'])).stdout).toBe('aarch64\n');
    expect(ok(await kiln(['run', 'localhost/runme:1', 'cat', '/target'])).stdout).toBe('linux/amd64\n');
  });

  it('a platform without a usable binfmt_misc handler fails with one line saying what to install and enable', async () => {
    // an empty binfmt_misc view: mounted and enabled, no handlers
    const view = join(b.dir, 'binfmt-empty');
    await mkdir(view);
    await writeFile(join(view, 'status'), 'enabled\n');
    await writeFile(join(view, 'register'), '');
    const scratch = await b.context({ Dockerfile: `FROM ${MULTI}\nRUN echo never runs\n` });
    const r = await kiln(['build', '--platform', 'linux/arm64', '--no-cache', scratch], { KILN_BINFMT_MISC: view });
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('kiln:'));
    expect(lines).toEqual([
      'kiln: Dockerfile:2: RUN for linux/arm64 needs QEMU emulation, and no binfmt_misc handler runs arm64 binaries on this host: install qemu-user-static and binfmt-support (Debian), then run update-binfmts --enable qemu-aarch64 (or: kiln setup emulation --platform linux/arm64)',
    ]);
    const s390x = await kiln(['build', '--platform', 'linux/s390x', '--no-cache', await b.context({ Dockerfile: 'FROM scratch\nRUN ["/x"]\n' })], { KILN_BINFMT_MISC: view });
    expect(s390x.code).toBe(1);
    expect(s390x.stderr).toContain('update-binfmts --enable qemu-s390x');
    const check = ok(await kiln(['setup', 'emulation', '--check'], { KILN_BINFMT_MISC: view }));
    expect(check.stdout.split('\n')).not.toContain('linux/arm64');
  });
});

describe('multi-platform bases from a registry', () => {
  it('pulls each platform of the base; a tag pulled for one platform does not hide the others', async () => {
    const base = `${reg.anon}/${uniqueRepo('base')}:1`;
    ok(await kiln(['tag', MULTI, base]));
    ok(await kiln(['--insecure-registry', reg.anon, 'push', base]));
    const other = await bench();
    try {
      const ctx2 = await other.context({ Dockerfile: `FROM ${base}\nARG TARGETPLATFORM\nRUN uname -m > /arch && echo $TARGETPLATFORM > /target\n` });
      const both = await other.build(ctx2, { platform: 'linux/amd64,linux/arm64', insecureRegistries: [reg.anon] });
      expect(await other.read(both.result.platforms![0]!.manifestDigest, 'arch')).toBe('x86_64\n');
      expect(await other.read(both.result.platforms![1]!.manifestDigest, 'arch')).toBe('aarch64\n');

      // one platform at a time: the second finds the tag naming the first's manifest, and pulls its own
      const third = await bench();
      try {
        const amd = await third.build(ctx2, { platform: 'linux/amd64', insecureRegistries: [reg.anon] });
        expect(amd.result.config.architecture).toBe('amd64');
        const arm = await third.build(ctx2, { platform: 'linux/arm64', insecureRegistries: [reg.anon] });
        expect(arm.result.config.architecture).toBe('arm64');
        expect(await third.read(arm.result.manifestDigest, 'target')).toBe('linux/arm64\n');
      } finally {
        await third.cleanup();
      }
    } finally {
      await other.cleanup();
    }
  });
});

describe('multi-platform cache export', () => {
  it('--cache-to carries every platform; a fresh store builds both from --cache-from without running a step', async () => {
    const cacheDir = join(b.dir, 'cache-multi');
    const first = await b.build(ctx, { platform: 'linux/amd64,linux/arm64', cacheTo: [parseCacheTo(`type=local,dest=${cacheDir},mode=max`)], sourceDateEpoch: 0 });
    expect(first.result.platforms).toHaveLength(2);
    const other = await bench();
    try {
      await makeBusyboxIndex(await other.store(), MULTI);
      const again = await other.build(ctx, { platform: 'linux/amd64,linux/arm64', cacheFrom: [parseCacheFrom(`type=local,src=${cacheDir}`)], sourceDateEpoch: 0 });
      expect(again.result.executedSteps).toBe(0);
      expect(again.result.indexDigest).toBe(first.result.indexDigest);
      const p = again.result.platforms!;
      expect(await other.read(p[1]!.manifestDigest, 'arch')).toBe('aarch64\n');
    } finally {
      await other.cleanup();
    }
  });
});
