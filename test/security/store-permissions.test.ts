import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../src/builder/build.js';
import { Store } from '../../src/store/store.js';
import { makeBusyboxImage } from '../helpers/busybox.js';

/**
 * A local user other than the store's owner reaches nothing inside the
 * store: no setuid-root binary from an image to run, no 0666 device node to
 * open, no blob or snapshot to read (the class of Docker's CVE-2021-41091).
 * Checked for real, as uid/gid 65534 with no supplementary groups.
 */

let dir: string;
let root: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'kiln-perm-'));
  // the store's parent is traversable by everyone, as /var/lib is
  await chmod(dir, 0o755);
  root = path.join(dir, 'store');
  const s = await Store.open(root);
  await makeBusyboxImage(s, 'localhost/busybox:latest');
  await s.close();
  const ctx = path.join(dir, 'ctx');
  await mkdir(ctx);
  await writeFile(
    path.join(ctx, 'Dockerfile'),
    'FROM localhost/busybox:latest\nRUN mkdir /suid && cp /bin/busybox /suid/busybox && chmod 4755 /suid/busybox && mknod /null2 c 1 3 && chmod 666 /null2 && echo world > /pub && chmod 644 /pub\nRUN --mount=type=cache,target=/c echo cached > /c/f && chmod 644 /c/f\n',
  );
  await build({ context: ctx, root, tags: ['localhost/perm:1'] });
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every path under the store (as root sees it), with its type. */
function everything(): Array<{ path: string; type: string }> {
  const out = execFileSync('find', [root, '-printf', '%y %p\\0'], { encoding: 'utf8' });
  return out
    .split('\0')
    .filter(Boolean)
    .map((l) => ({ type: l.slice(0, 1), path: l.slice(2) }));
}

/** Runs a shell script as nobody:nogroup with no supplementary groups. */
function asNobody(script: string, args: string[]): string {
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'sh', '-c', script, 'sh', ...args], { encoding: 'utf8' });
  if (r.error) throw r.error;
  return r.stdout;
}

describe('the store is private to its owner', () => {
  it('the store holds what makes the test meaningful: a setuid-root binary and a 0666 device node', () => {
    const all = everything();
    const suid = all.filter((e) => e.path.endsWith('/suid/busybox') && e.type === 'f');
    expect(suid.length).toBeGreaterThan(0);
    const dev = all.filter((e) => e.path.endsWith('/null2') && e.type === 'c');
    expect(dev.length).toBeGreaterThan(0);
    expect(all.some((e) => e.path.includes('/cache-mounts/'))).toBe(true);
  });

  it('no file or directory in it is readable, writable, executable or traversable by another user', () => {
    const paths = everything()
      .map((e) => e.path)
      .filter((p) => p !== root);
    expect(paths.length).toBeGreaterThan(100);
    // one line per access that succeeded; the store root itself is tested by listing it
    const out = asNobody(
      'r="$1"; shift; ls "$r" >/dev/null 2>&1 && echo "LIST $r"; [ -r "$r" ] && echo "READ $r"; [ -x "$r" ] && echo "TRAVERSE $r"; for p in "$@"; do [ -e "$p" ] && echo "SEE $p"; [ -r "$p" ] && echo "READ $p"; [ -w "$p" ] && echo "WRITE $p"; [ -x "$p" ] && echo "EXEC $p"; done; exit 0',
      [root, ...paths],
    );
    expect(out).toBe('');
  });

  it('the setuid binary cannot be run and the device node cannot be opened', () => {
    const all = everything();
    const suid = all.find((e) => e.path.endsWith('/suid/busybox'))!.path;
    const dev = all.find((e) => e.path.endsWith('/null2'))!.path;
    const out = asNobody('"$1" true 2>/dev/null && echo RAN; (cat < "$2") >/dev/null 2>&1 && echo OPENED; echo done', [suid, dev]);
    expect(out).toBe('done\n');
  });

  it('opening a store left open by an older kiln (or a chmod) takes its modes back', async () => {
    const l = (await Store.open(root)).layout;
    for (const d of [l.root, l.snapshots, l.tmp, l.cacheMounts]) await chmod(d, 0o755);
    const s = await Store.open(root);
    await s.close();
    for (const d of [l.root, l.snapshots, l.tmp, l.cacheMounts]) expect(((await stat(d)).mode & 0o777).toString(8), d).toBe('700');
  });
});
