import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parseVolume } from '../../src/cli/commands/run.js';
import { isKilnError } from '../../src/errors/index.js';
import { cgroupLayout } from '../../src/sandbox/cgroups.js';
import { runSandbox } from '../../src/sandbox/sandbox.js';
import { buildSpec, serializeSpec } from '../../src/sandbox/bundle.js';
import { cacheDirName } from '../../src/sandbox/cache-mounts.js';
import { DEFAULT_CAPABILITIES } from '../../src/sandbox/docker-defaults.js';
import { mountOverlay, mountsUnder, overlayOptions, unmount } from '../../src/sandbox/mount.js';
import { isOverlayOpaque as isOpaqueDir } from '../../src/layer/walk.js';
import { applyUlimits, inheritedRlimits, RLIM_INFINITY } from '../../src/sandbox/rlimits.js';
import { resolveInRoot } from '../../src/sandbox/rootfs-path.js';
import { toOciSeccomp } from '../../src/sandbox/seccomp.js';
import { resolveUser } from '../../src/sandbox/user.js';

const base = mkdtempSync(join(tmpdir(), 'kiln-units-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('user resolution', () => {
  const root = join(base, 'users');
  mkdirSync(join(root, 'etc'), { recursive: true });
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n# comment\nbroken\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\napp:x:1000:\nwheel:x:10:app\nstaff:x:50:other,app\n');

  test('default is root with its groups', async () => {
    expect(await resolveUser(root, undefined)).toEqual({ uid: 0, gid: 0, additionalGids: [0], home: '/root', name: 'root' });
  });
  test('names, uids and groups', async () => {
    expect((await resolveUser(root, 'app')).additionalGids).toEqual([1000, 10, 50]);
    expect(await resolveUser(root, 'app:staff')).toMatchObject({ uid: 1000, gid: 50, additionalGids: [50] });
    expect(await resolveUser(root, '77:88')).toMatchObject({ uid: 77, gid: 88, additionalGids: [88], home: '/' });
    await expect(resolveUser(root, 'app:nogroup')).rejects.toThrow(/unable to find group nogroup/);
  });
  test('an image whose /etc/passwd is a symlink out of the root reads the in-root target', async () => {
    const evil = join(base, 'evil');
    mkdirSync(join(evil, 'etc'), { recursive: true });
    symlinkSync('/etc/shadow', join(evil, 'etc/passwd'));
    await expect(resolveUser(evil, 'root')).resolves.toMatchObject({ uid: 0 });
    expect(resolveInRoot(evil, '/etc/passwd')).toBe('/etc/shadow');
  });
});

describe('resolveInRoot', () => {
  test('absolute links and .. stay inside the root', async () => {
    const root = join(base, 'links');
    mkdirSync(join(root, 'a/b'), { recursive: true });
    symlinkSync('/a', join(root, 'abs'));
    symlinkSync('../../../../..', join(root, 'a/b/up'));
    expect(resolveInRoot(root, '/abs/b/c')).toBe('/a/b/c');
    expect(resolveInRoot(root, '/a/b/up/etc')).toBe('/etc');
  });
});

describe('bundle', () => {
  test("Docker's capabilities, namespaces, masks and a seccomp profile reduced for them", async () => {
    const spec = await buildSpec({
      rootfs: '/r', args: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [0], home: '/root' }, hostname: 'h',
      network: 'none', mounts: [], rlimits: inheritedRlimits(), cgroupsPath: 'kiln/x/c', limits: { cpus: 1.5, memory: 1 << 20 },
    });
    expect(spec.process.capabilities.bounding).toEqual(DEFAULT_CAPABILITIES);
    expect(spec.linux.namespaces.map((n) => n.type).sort()).toEqual(['cgroup', 'ipc', 'mount', 'network', 'pid', 'uts']);
    expect(spec.linux.resources?.cpu).toEqual({ quota: 150000, period: 100000 });
    expect(spec.linux.maskedPaths).toContain('/proc/kcore');
    expect(spec.linux.readonlyPaths).toContain('/proc/sys');
    const names = new Set(spec.linux.seccomp?.syscalls.filter((s) => s.action === 'SCMP_ACT_ALLOW' && !s.args).flatMap((s) => s.names));
    expect(names.has('read')).toBe(true);
    expect(names.has('bpf')).toBe(false); // allowed only with SYS_ADMIN
    expect(names.has('init_module')).toBe(false); // only with SYS_MODULE
    expect(names.has('chroot')).toBe(true); // SYS_CHROOT is in the default set
    const hostSpec = await buildSpec({ ...spec, rootfs: '/r', args: ['true'], env: [], cwd: '/', user: { uid: 1, gid: 1, additionalGids: [], home: '/' }, hostname: 'h', network: 'host', mounts: [], rlimits: [], cgroupsPath: 'c' });
    expect(hostSpec.linux.namespaces.map((n) => n.type)).not.toContain('network');
    expect(hostSpec.process.capabilities.effective).toEqual([]);
  });

  test('seccomp rules conditional on caps and arches', () => {
    const p = {
      defaultAction: 'SCMP_ACT_ERRNO' as const, defaultErrnoRet: 1,
      archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'] }, { architecture: 'SCMP_ARCH_AARCH64', subArchitectures: ['SCMP_ARCH_ARM'] }],
      syscalls: [
        { names: ['a'], action: 'SCMP_ACT_ALLOW' },
        { names: ['b'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'] } },
        { names: ['c'], action: 'SCMP_ACT_ALLOW', excludes: { caps: ['CAP_KILL'] } },
        { names: ['d'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['s390x'] } },
      ],
    };
    const o = toOciSeccomp(p, ['CAP_KILL'], '6.1.0', 'x64');
    expect(o.syscalls.map((s) => s.names[0])).toEqual(['a']);
    expect(o.architectures).toEqual(['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']);
  });

  test('uint64 rlimits serialise exactly', () => {
    const json = serializeSpec({ process: { rlimits: [{ type: 'RLIMIT_CPU', soft: RLIM_INFINITY, hard: RLIM_INFINITY }] } } as never);
    expect(json).toBe('{"process":{"rlimits":[{"type":"RLIMIT_CPU","soft":18446744073709551615,"hard":18446744073709551615}]}}');
  });

  test('ulimits may lower but never exceed the inherited hard limit', () => {
    const base = [{ type: 'RLIMIT_NOFILE', soft: 1024n, hard: 4096n }];
    expect(applyUlimits(base, [{ name: 'nofile', soft: 100, hard: 200 }])).toEqual([{ type: 'RLIMIT_NOFILE', soft: 100n, hard: 200n }]);
    expect(() => applyUlimits(base, [{ name: 'nofile', soft: 100, hard: 8192 }])).toThrow(/exceeds kiln's own hard limit 4096/);
    expect(() => applyUlimits(base, [{ name: 'bogus', soft: 1, hard: 1 }])).toThrow(/unknown ulimit/);
  });
});

describe('overlay', () => {
  test('mounts with the diff-friendly options and marks a replaced dir opaque', async () => {
    const d = join(base, 'ov');
    for (const x of ['l/etc', 'u', 'w', 'm', 'e']) mkdirSync(join(d, x), { recursive: true });
    writeFileSync(join(d, 'l/etc/f'), 'x');
    mountOverlay({ lowerdirs: [join(d, 'l')], upperdir: join(d, 'u'), workdir: join(d, 'w'), target: join(d, 'm'), emptyLower: join(d, 'e') });
    try {
      expect(overlayOptions()).toEqual(['redirect_dir=off', 'metacopy=off', 'index=off', 'volatile']);
      expect(readFileSync(join(d, 'm/etc/f'), 'utf8')).toBe('x');
      rmSync(join(d, 'm/etc'), { recursive: true });
      mkdirSync(join(d, 'm/etc'));
    } finally {
      unmount(join(d, 'm'));
    }
    expect(mountsUnder(d)).toEqual([]);
    expect(isOpaqueDir(join(d, 'u/etc'))).toBe(true);
    expect(isOpaqueDir(join(d, 'l/etc'))).toBe(false);
  });

  test('a long stack of lowers stays within one page of mount options', async () => {
    const d = join(base, 'many');
    const lowers: string[] = [];
    for (let i = 0; i < 60; i++) {
      const l = join(d, `layer-with-a-long-directory-name-to-overflow-the-page-${String(i).padStart(3, '0')}`);
      mkdirSync(l, { recursive: true });
      writeFileSync(join(l, `f${i}`), String(i));
      lowers.push(l);
    }
    for (const x of ['u', 'w', 'm']) mkdirSync(join(d, x));
    expect(lowers.join(':').length).toBeGreaterThan(4096);
    mountOverlay({ lowerdirs: lowers, upperdir: join(d, 'u'), workdir: join(d, 'w'), target: join(d, 'm'), emptyLower: d });
    try {
      expect(readFileSync(join(d, 'm/f59'), 'utf8')).toBe('59');
    } finally {
      unmount(join(d, 'm'));
    }
  });
});

describe('names and flags', () => {
  test('cache ids become distinct readable directory names', () => {
    expect(cacheDirName('/root/.cache/go-build')).toMatch(/^root_.cache_go-build-[0-9a-f]{12}$/);
    expect(cacheDirName('/a/b')).not.toBe(cacheDirName('/a_b'));
  });
  test('kiln run -v', () => {
    expect(parseVolume('/src:/dst:ro')).toEqual({ source: '/src', target: '/dst', readonly: true });
    expect(() => parseVolume('/src')).toThrow(/SRC:DST/);
    expect(() => parseVolume('/src:rel')).toThrow(/absolute/);
  });
});

describe('runtime selection', () => {
  test('crun on a hybrid cgroup host is refused with an explanation', async () => {
    const err = await runSandbox({ storeRoot: join(base, 'crun-root'), lowerdirs: [], args: ['true'], env: [], workdir: '/', network: 'none', runtime: { runtime: 'crun' } }).catch((e: unknown) => e);
    if (cgroupLayout() === 'hybrid') {
      expect(isKilnError(err) && err.code).toBe('SANDBOX');
      expect((err as Error).message).toMatch(/hybrid cgroup layout/);
    } else {
      expect(isKilnError(err) && err.message).not.toMatch(/hybrid/);
    }
  });
});
