import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chown, mkdir, mkdtemp, rm, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KILN_BIN, runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { needsRootError } from '../../src/errors/index.js';
import { KilnError } from '../../src/errors/index.js';

const NOBODY = 65534;

/** bin/kiln as an unprivileged user (setpriv drops uid, gid and groups), with its own HOME. */
function asNobody(args: string[], home: string): Promise<KilnRun> {
  return new Promise((resolve) => {
    execFile('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'env', `HOME=${home}`, 'XDG_RUNTIME_DIR=', process.execPath, KILN_BIN, ...args],
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }));
  });
}

async function chownTree(dir: string): Promise<void> {
  await chown(dir, NOBODY, NOBODY);
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) await chownTree(p);
    else await chown(p, NOBODY, NOBODY);
  }
}

// Until rootless mode exists, kiln builds as root; as a user it says so in one line instead of a raw EPERM.
describe('kiln as an unprivileged user', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-nonroot-'));
    // a base image with a file owned by 5:5, built and saved by root
    await mkdir(join(dir, 'base'));
    await writeFile(join(dir, 'base', 'Dockerfile'), 'FROM scratch\nCOPY --chown=5:5 f /f\n');
    await writeFile(join(dir, 'base', 'f'), 'x');
    const rootStore = join(dir, 'root-store');
    expect((await runKiln(['--root', rootStore, 'build', '-t', 'localhost/owned:1', join(dir, 'base')])).code).toBe(0);
    expect((await runKiln(['--root', rootStore, 'save', '-o', join(dir, 'owned.tar'), 'localhost/owned:1'])).code).toBe(0);
    await rm(rootStore, { recursive: true, force: true });
    for (const [name, df] of [['from-owned', 'FROM localhost/owned:1\nCOPY f /g\n'], ['run', 'FROM scratch\nRUN true\n']] as const) {
      await mkdir(join(dir, name));
      await writeFile(join(dir, name, 'Dockerfile'), df);
      await writeFile(join(dir, name, 'f'), 'y');
    }
    await mkdir(join(dir, 'home'));
    await chownTree(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const oneLine = (r: KilnRun): string[] => r.stderr.split('\n').filter((l) => l.startsWith('kiln: '));

  it('a build whose base has owned files fails with one line naming what is needed, exit 1', async () => {
    const store = join(dir, 'home', 'store');
    expect((await asNobody(['--root', store, 'load', '-i', join(dir, 'owned.tar')], join(dir, 'home'))).code).toBe(0);
    const r = await asNobody(['--root', store, 'build', '-t', 'x', join(dir, 'from-owned')], join(dir, 'home'));
    expect(r.code).toBe(1);
    expect(oneLine(r)).toEqual(['kiln: Dockerfile:2: needs root: the kernel refused fchown (EPERM) (run kiln as root, e.g. with sudo; rootless mode is not available yet)']);
    expect(r.stderr).not.toMatch(/operation not permitted/);
  });

  it('a RUN fails the same way (the overlay mount is refused)', async () => {
    const r = await asNobody(['--root', join(dir, 'home', 'store'), 'build', join(dir, 'run')], join(dir, 'home'));
    expect(r.code).toBe(1);
    expect(oneLine(r)).toHaveLength(1);
    expect(oneLine(r)[0]).toMatch(/^kiln: Dockerfile:2: needs root: .*EPERM.*rootless mode is not available yet\)$/);
  });

  it('as root, an EPERM is left as it is (it has another cause there)', () => {
    const e = Object.assign(new Error('EPERM: operation not permitted, fchown'), { code: 'EPERM', syscall: 'fchown' });
    expect(needsRootError(e, 0)).toBeUndefined();
    expect(needsRootError(new KilnError('STORE', 'wrapped', { cause: e }), 1000)?.code).toBe('NEEDS_ROOT');
    expect(needsRootError(new Error('ENOENT'), 1000)).toBeUndefined();
  });
});
