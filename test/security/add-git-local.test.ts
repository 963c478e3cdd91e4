import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';
import { startGitDaemon, type GitDaemon } from '../helpers/git-daemon.js';

/**
 * ADD of a git repository never reads one from the build machine: neither a
 * file:// source nor a submodule of a remote repository that points at a
 * local path (both would copy files from outside the build context).
 */

let b: Bench;
let hostRepo: string;
let daemon: GitDaemon;

function git(dir: string, ...args: string[]): string {
  return execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { encoding: 'utf8' }).trim();
}

beforeAll(async () => {
  b = await bench();
  // a repository on the build machine holding something private
  hostRepo = path.join(b.dir, 'host-repo');
  await mkdir(hostRepo);
  git(hostRepo, 'init', '-q', '-b', 'main');
  await writeFile(path.join(hostRepo, 'private.txt'), 'HOST-REPO-SECRET');
  git(hostRepo, 'add', '.');
  git(hostRepo, 'commit', '-q', '-m', 'private');
  // a "remote" repository whose submodule points at the local one
  const evil = path.join(b.dir, 'evil-repo');
  await mkdir(evil);
  git(evil, 'init', '-q', '-b', 'main');
  await writeFile(path.join(evil, 'README'), 'hello');
  git(evil, '-c', 'protocol.file.allow=always', 'submodule', 'add', '-q', `file://${hostRepo}`, 'sub');
  git(evil, 'add', '.');
  git(evil, 'commit', '-q', '-m', 'with a local submodule');
  daemon = await startGitDaemon({ evil });
});
afterAll(async () => {
  daemon.stop();
  await b.cleanup();
});

describe('ADD of git sources on the build machine', () => {
  it('ADD file:///…/.git is refused with a clear error, before git runs', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nADD file://${hostRepo}/.git /src\n` });
    const err = await b.build(ctx, { tags: ['localhost/sec/git:1'] }).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('UNSAFE_PATH');
    expect(isKilnError(err) && err.message).toMatch(/file:\/\/ git sources are refused/);
  });

  it('a remote repository whose submodule is a local path fails instead of copying it', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nADD ${daemon.url('evil')} /src\n` });
    const err = await b.build(ctx, { tags: ['localhost/sec/git:2'] }).catch((e: unknown) => e);
    expect(isKilnError(err) && err.message).toMatch(/cannot fetch submodules/);
  });
});
