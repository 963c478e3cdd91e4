import { execFileSync, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KILN_BIN, rebuildIfStale } from '../helpers/kiln-cli.js';
import { startGitDaemon, type GitDaemon } from '../helpers/git-daemon.js';
import { bench, BASE, type Bench } from '../build/helpers.js';

/** Contexts buildx accepts besides a directory: `-`, git URLs and tarball URLs, through bin/kiln. */
let b: Bench;
let git: GitDaemon;
let http: Server;
let httpBase: string;
let tarball: Buffer;

/** Runs bin/kiln with binary stdin (runKiln only writes strings). */
function kiln(args: string[], input: Buffer | string = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KILN_BIN, '--root', b.root, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(input);
  });
}

beforeAll(async () => {
  await rebuildIfStale(['cli/commands/build', 'build/context-source']);
  b = await bench();
  await b.release();
  // a repository whose `v1` tag has the app in a subdirectory
  const repo = path.join(b.dir, 'repo');
  await mkdir(path.join(repo, 'app'), { recursive: true });
  await writeFile(path.join(repo, 'app', 'Dockerfile'), `FROM ${BASE}\nCOPY . /src/\n`);
  await writeFile(path.join(repo, 'app', 'hello.txt'), 'from git v1');
  await writeFile(path.join(repo, 'app', '.dockerignore'), 'ignored.txt\n');
  await writeFile(path.join(repo, 'app', 'ignored.txt'), 'x');
  const g = (...a: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...a]);
  g('init', '-q');
  g('add', '-A');
  g('commit', '-qm', 'v1');
  g('tag', 'v1');
  await writeFile(path.join(repo, 'app', 'hello.txt'), 'from git main');
  g('commit', '-qam', 'later');
  git = await startGitDaemon({ proj: repo });
  // a gzipped tar context served over loopback HTTP
  const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY t.txt /t.txt\n`, 't.txt': 'from tarball' });
  tarball = execFileSync('tar', ['-cz', '-C', ctx, '.']);
  http = createServer((req, res) => {
    if (req.url === '/ctx.tar.gz') res.end(tarball);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  httpBase = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
}, 180_000);
afterAll(async () => {
  git?.stop();
  http?.close();
  await b.cleanup();
});

describe('build contexts', () => {
  it('- reads a compressed tar context from stdin', async () => {
    const r = await kiln(['build', '--progress', 'plain', '-t', 'localhost/ctx/stdin-tar:1', '-'], tarball);
    expect(r.stderr).not.toMatch(/^kiln:/m);
    expect(r.code).toBe(0);
    await b.release();
    expect(await b.read('localhost/ctx/stdin-tar:1', '/t.txt')).toBe('from tarball');
    await b.release();
  });

  it('- reads a bare Dockerfile from stdin, with an empty context', async () => {
    const r = await kiln(['build', '--progress', 'plain', '-t', 'localhost/ctx/stdin-df:1', '-'], `FROM ${BASE}\nRUN echo bare > /bare.txt\n`);
    expect(r.code).toBe(0);
    await b.release();
    expect(await b.read('localhost/ctx/stdin-df:1', '/bare.txt')).toBe('bare\n');
    await b.release();
  });

  it('a git URL with #ref:subdir builds that tag\'s directory, .dockerignore applied', async () => {
    const r = await kiln(['build', '--progress', 'plain', '-t', 'localhost/ctx/git:1', `${git.url('proj')}#v1:app`]);
    expect(r.stderr).not.toMatch(/^kiln:/m);
    expect(r.code).toBe(0);
    await b.release();
    const fs = await b.fs('localhost/ctx/git:1');
    expect(await b.read('localhost/ctx/git:1', '/src/hello.txt')).toBe('from git v1');
    expect(fs.lstat('src/ignored.txt')).toBeFalsy();
    expect(fs.lstat('src/.git')).toBeFalsy();
    await b.release();
  });

  it('a git subdir outside the repository is refused', async () => {
    const r = await kiln(['build', `${git.url('proj')}#v1:../..`]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toMatch(/is not a directory inside the repository/);
  });

  it('a tarball URL is downloaded and unpacked', async () => {
    const r = await kiln(['build', '--progress', 'plain', '-t', 'localhost/ctx/url:1', `${httpBase}/ctx.tar.gz`]);
    expect(r.code).toBe(0);
    await b.release();
    expect(await b.read('localhost/ctx/url:1', '/t.txt')).toBe('from tarball');
    await b.release();
    const missing = await kiln(['build', `${httpBase}/nope.tar.gz`]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/HTTP 404/);
  });

  it('a hostile tar on stdin is refused and writes nothing outside', async () => {
    const evil = path.join(b.dir, 'evil');
    await mkdir(evil);
    await writeFile(path.join(evil, 'x'), 'x');
    const tar = execFileSync('tar', ['-c', '-C', evil, '--transform', 's,^x,../../escaped,', 'x']);
    const r = await kiln(['build', '-'], tar);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/refused: path contains "\.\."/);
    await expect(readFile(path.join(b.dir, '..', 'escaped'))).rejects.toThrow();
  });
});
