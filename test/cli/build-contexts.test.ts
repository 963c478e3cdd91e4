import { execFileSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildIfStale, runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { startGitDaemon, type GitDaemon } from '../helpers/git-daemon.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';
import { HashCache } from '../../src/context/hash-cache.js';

/** Contexts buildx accepts besides a directory: `-`, git URLs and tarball URLs, through bin/kiln. */
let b: Bench;
let git: GitDaemon;
let http: Server;
let httpBase: string;
let tarball: Buffer;
/** The commit the repository's `v1` tag names. */
let v1: string;

/** bin/kiln on the shared store, `input` on its stdin. */
function kiln(args: string[], input: Buffer | string = ''): Promise<KilnRun> {
  return runKiln(['--root', b.root, ...args], { input });
}

beforeAll(async () => {
  await rebuildIfStale(['cli/commands/build', 'builder/context-source', 'builder/named-contexts', 'export/oci-layout', 'builder/build', 'plan/plan', 'solver/solver', 'steps/copy-git']);
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
  v1 = g('rev-parse', 'v1').toString().trim();
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

describe('--build-context sources (FROM NAME, COPY --from=NAME)', () => {
  const built = async (args: string[]) => {
    const r = await kiln(['build', '--progress', 'plain', ...args]);
    expect(r.stderr).not.toMatch(/^kiln:/m);
    expect(r.code).toBe(0);
    await b.release();
    return r;
  };

  it('a directory: its files (its .dockerignore applied, owned by root), for FROM, COPY --from and in place of a stage of that name', async () => {
    const files = await b.context({ 'data/a.txt': 'from a directory', 'secret.txt': 'never', '.dockerignore': 'secret.txt\n' });
    const deps = await b.context({ 'deps.txt': 'from the deps directory' });
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE} AS deps\nRUN echo built-by-the-stage > /deps.txt\nFROM files AS tree\nFROM ${BASE}\nCOPY --from=tree / /tree/\nCOPY --from=deps /deps.txt /deps.txt\nCOPY --from=files /data/a.txt /a.txt\n`,
    });
    await built(['--build-context', `files=${files}`, '--build-context', `deps=${deps}`, '-t', 'localhost/ctx/named-dir:1', ctx]);
    expect(await b.read('localhost/ctx/named-dir:1', '/a.txt')).toBe('from a directory');
    // the context replaced the stage: its RUN never ran
    expect(await b.read('localhost/ctx/named-dir:1', '/deps.txt')).toBe('from the deps directory');
    const fs = await b.fs('localhost/ctx/named-dir:1');
    expect(fs.lstat('tree/data/a.txt')).toMatchObject({ uid: 0, gid: 0 });
    expect(fs.lstat('tree/secret.txt')).toBeFalsy();
    // the directory keeps a stat-keyed hash cache in the store, as the main context does: a rebuild does not read unchanged files again
    const hashes = JSON.stringify(JSON.parse(await readFile(HashCache.fileFor(path.join(b.root, 'cache', 'context-hashes'), files), 'utf8')));
    expect(hashes).toContain('a.txt');
    await b.release();
    // an unchanged directory is the same layer: the steps on it are cached
    const again = await built(['--build-context', `files=${files}`, '--build-context', `deps=${deps}`, ctx]);
    expect(again.stderr).toMatch(/3 cached/);
    await writeFile(path.join(files, 'data', 'a.txt'), 'changed');
    await built(['--build-context', `files=${files}`, '--build-context', `deps=${deps}`, '-t', 'localhost/ctx/named-dir:2', ctx]);
    expect(await b.read('localhost/ctx/named-dir:2', '/a.txt')).toBe('changed');
    await b.release();
  });

  it('oci-layout://PATH:TAG and @DIGEST: an image of a layout kiln wrote', async () => {
    const src = await b.context({ Dockerfile: `FROM ${BASE}\nRUN echo from-the-layout > /layout.txt\n` });
    const layout = path.join(b.dir, 'layout');
    await built(['-t', 'localhost/ctx/layout-src:v2', '-o', `type=oci,dest=${layout},tar=false`, src]);
    const index = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const digest = index.manifests[0]!.digest;
    // the layout's image is not in the store under a name the Dockerfile could reach otherwise
    await kiln(['rmi', 'localhost/ctx/layout-src:v2']);
    const ctx = await b.context({ Dockerfile: `FROM base\nRUN cat /layout.txt > /seen.txt\nFROM ${BASE}\nCOPY --from=pinned /layout.txt /copied.txt\nCOPY --from=0 /seen.txt /seen.txt\n` });
    const r = await built(['--build-context', `base=oci-layout://${layout}:v2`, '--build-context', `pinned=oci-layout://${layout}@${digest}`, '-t', 'localhost/ctx/from-layout:1', ctx]);
    expect(await b.read('localhost/ctx/from-layout:1', '/seen.txt')).toBe('from-the-layout\n');
    expect(await b.read('localhost/ctx/from-layout:1', '/copied.txt')).toBe('from-the-layout\n');
    await b.release();
    expect(r.stderr).toContain(`FROM oci-layout://${layout}:v2@${digest}`);
    // a tag the layout lacks means its only image, as in buildx; with two images it is an error naming the tags
    const only = await b.context({ Dockerfile: 'FROM base\n' });
    expect((await kiln(['build', '--build-context', `base=oci-layout://${layout}:nope`, only])).code).toBe(0);
    const two = { ...index, manifests: [index.manifests[0], { ...index.manifests[0], annotations: { 'org.opencontainers.image.ref.name': 'v3' } }] };
    await writeFile(path.join(layout, 'index.json'), JSON.stringify(two));
    const missing = await kiln(['build', '--build-context', `base=oci-layout://${layout}:nope`, only]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n').at(-1)).toMatch(/no image tagged "nope" \(tags: v2, v3\)/);
  });

  it('a git URL: the ref\'s subdirectory, shallow, with the commit in the provenance', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY --from=src hello.txt /hello.txt\n` });
    const out = path.join(b.dir, 'git-named-out');
    await built(['--build-context', `src=${git.url('proj')}#v1:app`, '--provenance', 'mode=max', '-o', `type=local,dest=${out}`, ctx]);
    expect(await readFile(path.join(out, 'hello.txt'), 'utf8')).toBe('from git v1');
    const prov = JSON.parse(await readFile(path.join(out, 'provenance.json'), 'utf8')) as { predicate: { materials: Array<{ uri: string; digest: Record<string, string> }> } };
    expect(prov.predicate.materials).toContainEqual({ uri: `${git.url('proj')}#v1:app`, digest: { sha1: v1 } });
  });

  it('a git build context: its commit is in the provenance', async () => {
    const out = path.join(b.dir, 'git-main-out');
    await built(['--provenance', 'mode=min', '-o', `type=local,dest=${out}`, `${git.url('proj')}#v1:app`]);
    expect(await readdir(path.join(out, 'src'))).toContain('hello.txt');
    const prov = JSON.parse(await readFile(path.join(out, 'provenance.json'), 'utf8')) as { predicate: { materials: Array<{ uri: string; digest: Record<string, string> }> } };
    expect(prov.predicate.materials).toContainEqual({ uri: `${git.url('proj')}#v1:app`, digest: { sha1: v1 } });
  });

  it('an http(s) URL: the download as one file named context, as BuildKit does', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY --from=dl /context /dl.tar.gz\n` });
    await built(['--build-context', `dl=${httpBase}/ctx.tar.gz`, '-t', 'localhost/ctx/named-http:1', ctx]);
    const fs = await b.fs('localhost/ctx/named-http:1');
    expect(fs.lstat('dl.tar.gz')?.size).toBe(tarball.length);
    await b.release();
    const missing = await kiln(['build', '--build-context', `dl=${httpBase}/nope`, ctx]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/HTTP 404/);
  });
});
