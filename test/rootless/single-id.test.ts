import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chownTree, ensureTestUser, kilnAs, userDir, type TestUser } from '../helpers/rootless-user.js';
import { listOciArchive } from './image-listing.js';

// A user without subordinate ids: kiln maps only the user (as `unshare -r`), says so once, builds what belongs to root, and
// refuses other owners in one line that tells how to add a range.
describe('rootless with no subordinate ids', () => {
  let user: TestUser;
  let home: string;
  const oneLine = (stderr: string): string[] => stderr.split('\n').filter((l) => l.startsWith('kiln: '));

  beforeAll(() => {
    user = ensureTestUser('kiln-rootless-single', false);
    home = userDir(user);
    for (const [name, df] of [
      ['run', 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir /out && /bin/busybox id -u > /out/id"]\n'],
      ['owned', 'FROM scratch\nCOPY --chown=5:5 busybox /bin/busybox\n'],
      ['run-chown', 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "chown", "7", "/bin/busybox"]\n'],
    ] as const) {
      mkdirSync(join(home, name));
      writeFileSync(join(home, name, 'Dockerfile'), df);
      copyFileSync('/usr/bin/busybox', join(home, name, 'busybox'));
    }
    chownTree(home, user);
  });
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('builds an image whose files all belong to root, saying once that only the user is mapped', async () => {
    const out = join(home, 'run.tar');
    const r = await kilnAs(user, ['build', '--network', 'none', '--output', `type=oci,dest=${out}`, join(home, 'run')], { home });
    expect(r.code).toBe(0);
    const notices = oneLine(r.stderr).filter((l) => l.includes('no subordinate ids'));
    expect(notices).toEqual([`kiln: rootless: no subordinate ids for ${user.name} in /etc/subuid; only uid ${user.uid} is mapped (as root), so images with files of other owners cannot be built (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user.name})`]);
    const files = listOciArchive(out);
    expect(files.get('out/id')).toMatchObject({ uid: 0, gid: 0, mode: '-rw-r--r--' });
    expect(files.get('bin/busybox')).toMatchObject({ uid: 0, gid: 0 });
  });

  it('COPY --chown to another owner fails in one line with the usermod hint, exit 1', async () => {
    const r = await kilnAs(user, ['build', join(home, 'owned')], { home });
    expect(r.code).toBe(1);
    const errors = oneLine(r.stderr).filter((l) => !l.startsWith('kiln: rootless: no subordinate ids'));
    expect(errors).toEqual([`kiln: Dockerfile:2: rootless: owner 5:5 is other than root, but only uid ${user.uid} is mapped (no subordinate ids for ${user.name}) (usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user.name})`]);
  });

  it('a RUN that chowns to another id fails with the kernel refusing the unmapped id', async () => {
    const r = await kilnAs(user, ['build', '--network', 'none', join(home, 'run-chown')], { home });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/chown: \/bin\/busybox: Invalid argument/);
  });
});
