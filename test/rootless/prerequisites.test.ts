import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chownTree, ensureTestUser, kilnAs, userDir, type TestUser } from '../helpers/rootless-user.js';
import { parseSubIds, rootlessFailure, userNamespaceBlocker, mappedSpan, type RootlessSession } from '../../src/rootless/index.js';
import { adaptSpecForUserNamespace } from '../../src/sandbox/rootless-spec.js';
import { buildSpec } from '../../src/sandbox/bundle.js';
import { KilnError } from '../../src/errors/index.js';

const SESSION: RootlessSession = {
  user: 'alice', uid: 1000, gid: 1000, single: false, runtimeRoot: '/run/user/1000/kiln/runc',
  uidMap: [{ inner: 0, outer: 1000, count: 1 }, { inner: 1, outer: 100000, count: 65536 }],
  gidMap: [{ inner: 0, outer: 1000, count: 1 }, { inner: 1, outer: 100000, count: 65536 }],
};

describe('a missing prerequisite is one line naming it', () => {
  let user: TestUser;
  let home: string;
  beforeAll(() => {
    user = ensureTestUser();
    home = userDir(user);
    mkdirSync(join(home, 'ctx'));
    writeFileSync(join(home, 'ctx', 'Dockerfile'), 'FROM scratch\nCOPY Dockerfile /\n');
    // a PATH with unshare but without newuidmap/newgidmap (Debian's uidmap not installed)
    mkdirSync(join(home, 'bin'));
    symlinkSync('/usr/bin/unshare', join(home, 'bin', 'unshare'));
    chownTree(home, user);
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('no newuidmap', async () => {
    const r = await kilnAs(user, ['build', join(home, 'ctx')], { home, env: { PATH: join(home, 'bin') } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('kiln: rootless: newuidmap not found (install the Debian package "uidmap")\n');
  });

  it('no unshare', async () => {
    const r = await kilnAs(user, ['build', join(home, 'ctx')], { home, env: { PATH: '/nonexistent' } });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('kiln: rootless: cannot start unshare: spawn unshare ENOENT (install util-linux)\n');
  });

  it('--help and --version need no namespace', async () => {
    const r = await kilnAs(user, ['--version'], { home, env: { PATH: '/nonexistent' } });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('user namespaces switched off by sysctl are named', () => {
    const sysctls = (values: Record<string, string>) => (p: string): string | undefined => values[p];
    expect(userNamespaceBlocker(sysctls({ '/proc/sys/user/max_user_namespaces': '0' }))).toBe('user.max_user_namespaces=0');
    expect(userNamespaceBlocker(sysctls({ '/proc/sys/user/max_user_namespaces': '100', '/proc/sys/kernel/unprivileged_userns_clone': '0' }))).toBe('kernel.unprivileged_userns_clone=0');
    expect(userNamespaceBlocker(sysctls({ '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '1' }))).toBe('kernel.apparmor_restrict_unprivileged_userns=1');
    expect(userNamespaceBlocker(sysctls({ '/proc/sys/user/max_user_namespaces': '100' }))).toBeUndefined();
  });

  it('an overlay the kernel refuses in the namespace, and a device node, are named', () => {
    const overlay = rootlessFailure(new KilnError('SANDBOX', 'mount overlay on /s/tmp/r1/m failed: EPERM'), SESSION);
    expect(overlay?.format()).toBe('rootless: the kernel does not allow overlay mounts in a user namespace (needs Linux 5.11 or later) (run kiln as root on this kernel)');
    const dev = rootlessFailure(new KilnError('ARCHIVE', 'mknod /s/x/dev/null failed (errno 1)'), SESSION);
    expect(dev?.code).toBe('ROOTLESS');
    const chown = rootlessFailure(Object.assign(new Error('EINVAL: invalid argument, lchown \'/s/x\''), { code: 'EINVAL', syscall: 'lchown' }), SESSION);
    expect(chown?.message).toBe('rootless: a file has an owner outside the ids mapped for alice: uids 0-65536, gids 0-65536 (from /etc/subuid and /etc/subgid)');
    expect(rootlessFailure(new Error('ENOENT'), SESSION)).toBeUndefined();
    expect(rootlessFailure(new KilnError('SANDBOX', 'mount overlay on /m failed: EPERM'), undefined)).toBeUndefined();
  });
});

describe('pure parts', () => {
  it('subordinate ranges by login name or uid; the first valid line wins', () => {
    const text = '# comment\nbob:100000:65536\nalice:x:1\n1000:200000:1000\nalice:300000:65536\n';
    expect(parseSubIds(text, 'alice', 1000)).toEqual({ start: 200000, count: 1000 });
    expect(parseSubIds(text, 'bob', 1001)).toEqual({ start: 100000, count: 65536 });
    expect(parseSubIds(text, 'carol', 1002)).toBeUndefined();
    expect(parseSubIds('alice:1:0\n', 'alice', 1000)).toBeUndefined();
  });

  it('the mapped span of contiguous extents', () => {
    expect(mappedSpan(SESSION.uidMap)).toEqual({ first: 0, last: 65536 });
    expect(mappedSpan([{ inner: 0, outer: 1000, count: 1 }])).toEqual({ first: 0, last: 0 });
  });

  it('a RUN bundle in rootless mode: own user namespace mirroring the extents, /sys bound where the netns is joined, no cgroups', async () => {
    const input = {
      rootfs: '/r', args: ['true'], env: [], cwd: '/', user: { uid: 0, gid: 0, additionalGids: [], home: '/root' }, hostname: 'h',
      mounts: [], rlimits: [], cgroupsPath: 'kiln/x/c', limits: { memory: 1 << 20 },
    };
    const warnings: string[] = [];
    const host = await buildSpec({ ...input, network: 'host' });
    adaptSpecForUserNamespace(host, SESSION, 'host', { warn: (l) => warnings.push(l), mountinfo: '' });
    expect(host.linux.namespaces[0]).toEqual({ type: 'user' });
    expect(host.linux.uidMappings).toEqual([{ containerID: 0, hostID: 0, size: 1 }, { containerID: 1, hostID: 1, size: 65536 }]);
    expect(host.mounts.find((m) => m.destination === '/sys')).toMatchObject({ type: 'bind', source: '/sys' });
    expect(host.mounts.some((m) => m.type === 'cgroup')).toBe(false);
    // this machine delegates no cgroups to users (cgroup v1 or a root-owned v2 tree): limits are dropped with one warning
    expect(host.linux.resources).toBeUndefined();
    expect(host.linux.cgroupsPath).toBeUndefined();

    const none = await buildSpec({ ...input, network: 'none' });
    adaptSpecForUserNamespace(none, { ...SESSION, single: true, uidMap: [SESSION.uidMap[0]!], gidMap: [SESSION.gidMap[0]!] }, 'none', { warn: (l) => warnings.push(l), mountinfo: '' });
    expect(none.mounts.find((m) => m.destination === '/sys')?.type).toBe('bind');
    expect(none.mounts.find((m) => m.type === 'devpts')?.options).not.toContain('gid=5');
    expect(warnings.length).toBeLessThanOrEqual(1);
  });
});
