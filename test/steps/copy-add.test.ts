import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildContext } from '../../src/context/build-context.js';
import { LayeredFs } from '../../src/context/layered-fs.js';
import { planCopy, type CopyParams } from '../../src/steps/copy.js';
import { cloneGit, isGitUrl, parseGitUrl } from '../../src/steps/copy-git.js';
import { collect, failure, makeTree, tempDir } from './copy-helpers.js';
import { startGitDaemon, type GitDaemon } from '../helpers/git-daemon.js';

async function add(p: Partial<CopyParams> & Pick<CopyParams, 'from' | 'sources' | 'dest'>) {
  const r = await planCopy({ kind: 'ADD', workdir: '/', now: 1000, ...p });
  try {
    await r.unpackArchives();
    return { ...r, seen: await collect(r.entries) };
  } finally {
    r.dispose();
  }
}

/** A context holding payload.tar in every compression, under names that do not reveal it. */
function archiveContext(): string {
  const dir = tempDir();
  const src = makeTree(join(dir, 'payload'), { 'top.txt': 'T', 'sub/deep.txt': 'D', 'link': { link: 'top.txt' } });
  execFileSync('tar', ['--numeric-owner', '--owner=7', '--group=8', '-cf', join(dir, 'plain.bin'), '-C', src, '.']);
  execFileSync('sh', ['-c', `gzip -c plain.bin > gz.data && bzip2 -c plain.bin > bz.data && xz -c plain.bin > xz.data && zstd -q -c plain.bin > zst.data`], { cwd: dir });
  writeFileSync(join(dir, 'fake.tar'), 'not really a tar');
  execFileSync('rm', ['-rf', src]);
  return dir;
}

describe('ADD local archives', () => {
  const dir = archiveContext();
  const from = BuildContext.open(dir);

  for (const name of ['plain.bin', 'gz.data', 'bz.data', 'xz.data', 'zst.data']) {
    it(`unpacks ${name}, detected by content`, async () => {
      const { seen } = await add({ from, sources: [name], dest: '/x' });
      expect(Object.keys(seen)).toEqual(['x', 'x/link', 'x/sub', 'x/sub/deep.txt', 'x/top.txt']);
      expect(seen['x/top.txt']).toMatchObject({ content: 'T', uid: 7, gid: 8 });
      expect(seen['x/link']).toMatchObject({ type: 'symlink', linkname: 'top.txt' });
    });
  }

  it('--chown overrides the archive owners; --unpack=false copies the archive as is', async () => {
    expect((await add({ from, sources: ['gz.data'], dest: '/x', chown: '1:2' })).seen['x/top.txt']).toMatchObject({ uid: 1, gid: 2 });
    const raw = (await add({ from, sources: ['gz.data'], dest: '/x', unpack: false })).seen;
    expect(Object.keys(raw)).toEqual(['x']);
  });

  it('copies a non-archive named .tar as a file; COPY never unpacks', async () => {
    expect((await add({ from, sources: ['fake.tar'], dest: '/x/' })).seen['x/fake.tar']!.content).toBe('not really a tar');
    const copied = await planCopy({ from, sources: ['plain.bin'], dest: '/x/', workdir: '/' });
    expect(copied.entries.map((e) => e.path)).toEqual(['x', 'x/plain.bin']);
  });

  it('reads GNU long names, PAX headers, large ids and hardlinks', async () => {
    const d = tempDir();
    const long = `${'deep/'.repeat(30)}file.txt`;
    makeTree(join(d, 'src'), { [long]: 'L', 'a.txt': 'A' });
    execFileSync('ln', [join(d, 'src', 'a.txt'), join(d, 'src', 'hard.txt')]);
    execFileSync('tar', ['--format=gnu', '-cf', join(d, 'gnu.tar'), '-C', join(d, 'src'), '.']);
    execFileSync('tar', ['--format=posix', '--owner=3000000000', '--group=5', '--numeric-owner', '-cJf', join(d, 'pax.tar.xz'), '-C', join(d, 'src'), '.']);
    const ctx = BuildContext.open(d);
    for (const name of ['gnu.tar', 'pax.tar.xz']) {
      const { seen } = await add({ from: ctx, sources: [name], dest: '/o' });
      expect(seen[`o/${long}`]!.content).toBe('L');
      // hard links stay hard links, as BuildKit's untar makes them (a.txt sorts first: it holds the data)
      expect(seen['o/a.txt']).toMatchObject({ type: 'file', content: 'A' });
      expect(seen['o/hard.txt']).toMatchObject({ type: 'hardlink', linkname: 'o/a.txt' });
      if (name === 'pax.tar.xz') expect(seen['o/a.txt']).toMatchObject({ uid: 3000000000, gid: 5 });
    }
  });

  it('keys on the archive bytes and unpacks only when the layer is built', async () => {
    const tmp = tempDir();
    const a = await planCopy({ kind: 'ADD', from, sources: ['gz.data'], dest: '/x', workdir: '/', tmpDir: tmp });
    expect(readdirSync(tmp)).toEqual([]);
    const b = await planCopy({ kind: 'ADD', from, sources: ['gz.data'], dest: '/x', workdir: '/', tmpDir: tmp });
    expect(b.inputDigest).toBe(a.inputDigest);
    // the entries need the archive unpacked first, which the digest never did
    expect(() => a.entries).toThrow(/read before it was unpacked/);
    expect(readdirSync(tmp)).toEqual([]);
    await a.unpackArchives();
    expect(a.entries.length).toBe(5);
    expect(readdirSync(tmp).length).toBe(1);
    a.dispose();
    const other = await planCopy({ kind: 'ADD', from, sources: ['bz.data'], dest: '/x', workdir: '/', tmpDir: tmp });
    expect(other.inputDigest).not.toBe(a.inputDigest);
  });

  it('refuses archive entries that climb out of the destination', async () => {
    const d = tempDir();
    makeTree(d, { 'inner/evil.txt': 'E' });
    execFileSync('tar', ['-cf', join(d, 'evil.tar'), '-C', join(d, 'inner'), '--transform', 's,^,../../,', 'evil.txt']);
    const f = await failure(add({ from: BuildContext.open(d), sources: ['evil.tar'], dest: '/x' }));
    expect(f.code).toBe('ARCHIVE');
  });
});

describe('ADD http(s) URLs', () => {
  let server: Server;
  let base = '';
  const body = 'hello from loopback\n';
  const sum = createHash('sha256').update(body).digest('hex');
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/files/hello.txt' || req.url === '/') {
        res.writeHead(200, { 'Last-Modified': 'Wed, 21 Oct 2015 07:28:00 GMT', 'Content-Type': 'text/plain' });
        res.end(body);
      } else if (req.url === '/redirect') {
        res.writeHead(302, { Location: '/files/hello.txt' });
        res.end();
      } else if (req.url === '/tarball') {
        res.writeHead(200);
        res.end(execFileSync('sh', ['-c', 'd=$(mktemp -d) && echo in-tar > $d/t.txt && tar -C $d -czf - t.txt']));
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  const from = BuildContext.open(makeTree(tempDir(), { 'x': 'x' }));

  it('downloads with mode 0600 and mtime from Last-Modified, named from the URL path', async () => {
    const { seen, inputDigest } = await add({ from, sources: [`${base}/files/hello.txt`], dest: '/dl/' });
    expect(seen['dl/hello.txt']).toMatchObject({ type: 'file', mode: '600', content: body, mtime: Date.parse('2015-10-21T07:28:00Z') / 1000, uid: 0 });
    const again = await add({ from, sources: [`${base}/redirect`], dest: '/dl/hello.txt' });
    expect(again.seen['dl/hello.txt']!.content).toBe(body);
    expect(inputDigest).toMatch(/^sha256:/);
  });

  it('uses the destination as the file name when it has no trailing slash', async () => {
    const { seen } = await add({ from, sources: [`${base}/files/hello.txt`], dest: '/etc/greeting' });
    expect(Object.keys(seen)).toEqual(['etc', 'etc/greeting']);
  });

  it('verifies --checksum', async () => {
    const ok = await add({ from, sources: [`${base}/files/hello.txt`], dest: '/d/', checksum: `sha256:${sum}` });
    expect(ok.seen['d/hello.txt']!.content).toBe(body);
    const f = await failure(add({ from, sources: [`${base}/files/hello.txt`], dest: '/d/', checksum: `sha256:${'0'.repeat(64)}` }));
    expect(f.code).toBe('DIGEST_MISMATCH');
    expect(f.message).toContain(`sha256:${sum}`);
  });

  it('reports a failed download naming the URL', async () => {
    const f = await failure(add({ from, sources: [`${base}/missing`], dest: '/d/' }));
    expect(f.message).toBe(`ADD failed: cannot download ${base}/missing: HTTP 404`);
  });

  it('unpacks a downloaded archive only with --unpack', async () => {
    expect(Object.keys((await add({ from, sources: [`${base}/tarball`], dest: '/d/' })).seen)).toEqual(['d', 'd/tarball']);
    expect((await add({ from, sources: [`${base}/tarball`], dest: '/d/', unpack: true })).seen['d/t.txt']!.content).toBe('in-tar\n');
  });

  it('COPY refuses URLs', async () => {
    const f = await failure(planCopy({ from, sources: [`${base}/files/hello.txt`], dest: '/', workdir: '/' }));
    expect(f.message).toMatch(/can't be a URL/);
  });

  it('keeps staged downloads out of the persisted hash cache', async () => {
    const { HashCache } = await import('../../src/context/hash-cache.js');
    const { readFileSync } = await import('node:fs');
    const file = join(tempDir(), 'hashes.json');
    const cache = HashCache.load(file);
    const r = await planCopy({ kind: 'ADD', from, sources: [`${base}/files/hello.txt`, 'x'], dest: '/d/', workdir: '/', hashCache: cache });
    // the digest is computed on first use, as the step asks for it: staged and context files are hashed then
    expect(r.inputDigest).toMatch(/^sha256:/);
    r.dispose();
    cache.save();
    const saved = readFileSync(file, 'utf8');
    expect(saved).toContain('/x"');
    expect(saved).not.toContain('hello.txt');
  });

  it('cleans its staging directory', async () => {
    const tmp = tempDir();
    const r = await planCopy({ kind: 'ADD', from, sources: [`${base}/files/hello.txt`], dest: '/', workdir: '/', tmpDir: tmp });
    expect(readdirSync(tmp).length).toBe(1);
    r.dispose();
    expect(readdirSync(tmp).length).toBe(0);
  });
});

describe('ADD git repositories', () => {
  const repo = tempDir('kiln-git-');
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args]).toString().trim();
  git('init', '-q', '-b', 'main');
  makeTree(repo, { 'README': 'v1', 'app/main.js': 'console.log(1)' });
  git('add', '.');
  git('commit', '-q', '-m', 'one');
  git('tag', 'v1');
  const first = git('rev-parse', 'HEAD');
  git('checkout', '-q', '-b', 'feature');
  writeFileSync(join(repo, 'README'), 'feature');
  mkdirSync(join(repo, 'app/lib'));
  writeFileSync(join(repo, 'app/lib/x.js'), 'x');
  git('add', '.');
  git('commit', '-q', '-m', 'two');
  git('checkout', '-q', 'main');
  // file:// git sources are refused: clones go through a loopback git daemon
  let url = '';
  let daemon: GitDaemon | undefined;
  beforeAll(async () => {
    daemon = await startGitDaemon({ r: repo });
    url = daemon.url('r');
  });
  afterAll(() => daemon?.stop());
  const from = BuildContext.open(makeTree(tempDir(), { 'x': 'x' }));

  it('recognises git URLs and fragments', () => {
    expect(isGitUrl('https://github.com/moby/buildkit.git#v0.12.0:docs')).toBe(true);
    expect(isGitUrl('git@github.com:moby/buildkit.git')).toBe(true);
    expect(isGitUrl('https://example.com/file.tar.gz')).toBe(false);
    expect(parseGitUrl('https://h/r.git#v1:sub/dir')).toEqual({ remote: 'https://h/r.git', ref: 'v1', subdir: 'sub/dir' });
  });

  it('clones the default branch without .git', async () => {
    const { seen } = await add({ from, sources: [url], dest: '/src' });
    expect(Object.keys(seen)).toEqual(['src', 'src/README', 'src/app', 'src/app/main.js']);
    expect(seen['src/README']!.content).toBe('v1');
  });

  it('checks out a branch, tag or commit, and a subdirectory', async () => {
    expect((await add({ from, sources: [`${url}#feature`], dest: '/s' })).seen['s/README']!.content).toBe('feature');
    expect(Object.keys((await add({ from, sources: [`${url}#feature:app`], dest: '/s' })).seen)).toEqual(['s', 's/lib', 's/lib/x.js', 's/main.js']);
    expect((await add({ from, sources: [`${url}#v1`], dest: '/s' })).seen['s/README']!.content).toBe('v1');
    expect((await add({ from, sources: [`${url}#${first}`], dest: '/s' })).seen['s/README']!.content).toBe('v1');
  });

  it('--checksum pins the commit', async () => {
    expect((await add({ from, sources: [`${url}#v1`], dest: '/s', checksum: first })).seen['s/README']!.content).toBe('v1');
    expect((await add({ from, sources: [`${url}#v1`], dest: '/s', checksum: first.slice(0, 12) })).seen['s/README']).toBeDefined();
    const f = await failure(add({ from, sources: [`${url}#feature`], dest: '/s', checksum: first }));
    expect(f.code).toBe('DIGEST_MISMATCH');
  });

  it('--keep-git-dir keeps .git', async () => {
    const { seen } = await add({ from, sources: [url], dest: '/s', keepGitDir: true });
    expect(seen['s/.git/HEAD']).toBeDefined();
  });

  it('fetches only the ref\'s commit (depth 1), for a branch, a tag and a full commit id', async () => {
    const second = git('rev-parse', 'feature');
    for (const [ref, want] of [['feature', second], ['v1', first], [second, second]]) {
      const dir = join(tempDir(), 'clone');
      const commit = await cloneGit({ remote: url, ref: ref! }, dir);
      expect(commit).toBe(want);
      const g = (...a: string[]) => execFileSync('git', ['-C', dir, ...a]).toString().trim();
      expect(g('rev-parse', 'HEAD')).toBe(commit);
      // the feature branch has two commits: a full clone would have both
      expect(g('rev-list', '--count', 'HEAD')).toBe('1');
      expect(g('rev-parse', '--is-shallow-repository')).toBe('true');
    }
  });

  it('clones over git:// from a loopback git daemon', async () => {
    const { seen } = await add({ from, sources: [`${url}#feature:app`], dest: '/g/' });
    expect(Object.keys(seen)).toEqual(['g', 'g/lib', 'g/lib/x.js', 'g/main.js']);
  });

  it('names an unknown ref', async () => {
    const f = await failure(add({ from, sources: [`${url}#nope`], dest: '/s' }));
    expect(f.message).toContain('"nope"');
  });
});

describe('ADD archive placement in the image (BuildKit: go-archive untar chrooted to the destination)', () => {
  function image(): LayeredFs {
    const root = makeTree(tempDir(), { 'run/': { dir: true }, 'real/': { dir: true }, 'var/run': { link: '/run' }, 'sub/abs': { link: '/etc' }, 'sub/up': { link: '../../..' } });
    return new LayeredFs([root], 'image');
  }
  function tarOf(files: Record<string, string>, names: string[], opts: string[] = []): BuildContext {
    const d = tempDir();
    makeTree(join(d, 'src'), files);
    execFileSync('tar', ['-cf', join(d, 'a.tar'), ...opts, '-C', join(d, 'src'), ...names]);
    return BuildContext.open(d);
  }

  it('a file entry goes through an existing symlink; a directory entry replaces it', async () => {
    const destFs = image();
    const only = tarOf({ 'var/run/x': 'x' }, ['var/run/x'], ['--no-recursion']);
    const a = (await add({ from: only, sources: ['a.tar'], dest: '/', destFs })).seen;
    expect(Object.keys(a)).toEqual(['run', 'run/x']);
    const withDirs = tarOf({ 'var/run/x': 'x' }, ['var']);
    const b = (await add({ from: withDirs, sources: ['a.tar'], dest: '/', destFs })).seen;
    expect(b['var/run']).toMatchObject({ type: 'directory' });
    expect(b['var/run/x']).toMatchObject({ content: 'x' });
  });

  it('absolute links and .. resolve from the destination, never above it', async () => {
    const destFs = image();
    const ctx = tarOf({ 'abs/y': 'y', 'up/z': 'z' }, ['abs/y', 'up/z'], ['--no-recursion']);
    const { seen } = await add({ from: ctx, sources: ['a.tar'], dest: '/sub/', destFs });
    expect(seen['sub/etc/y']).toMatchObject({ content: 'y' });
    expect(seen['sub/z']).toMatchObject({ content: 'z' });
    expect(Object.keys(seen).some((k) => !k.startsWith('sub'))).toBe(false);
  });

  it('--chmod leaves unpacked entries and the directories made for them alone', async () => {
    const ctx = tarOf({ 'd/f': 'f' }, ['d']);
    const { seen } = await add({ from: ctx, sources: ['a.tar'], dest: '/new/dir/', chmod: '700' });
    expect(seen['new']).toMatchObject({ mode: '755' });
    expect(seen['new/dir']).toMatchObject({ mode: '755' });
    expect(seen['new/dir/d/f']!.mode).not.toBe('700');
  });
});
