import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { provenancePredicate, type BuildRecord } from '../../src/attest/provenance.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';
import { startGitDaemon, type GitDaemon } from '../helpers/git-daemon.js';
import { runKiln } from '../helpers/kiln-cli.js';

type Material = { uri: string; digest: Record<string, string> };
type ProvenanceV02 = {
  materials: Material[];
  invocation: {
    configSource: { uri?: string; digest: Record<string, string>; entryPoint: string };
    parameters: { frontend: string; args: Record<string, string>; argNames?: string[]; secrets?: Array<{ id: string }>; locals: Array<{ name: string }> };
    environment: { platform: string };
  };
};

function gitRepo(dir: string, files: Record<string, string>): string {
  execFileSync('git', ['init', '-q', '-b', 'main', dir]);
  for (const [name, content] of Object.entries(files)) execFileSync('sh', ['-c', `mkdir -p "$(dirname "$1")" && printf '%s' "$2" > "$1"`, 'sh', path.join(dir, name), content]);
  execFileSync('git', ['-C', dir, 'add', '.']);
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-q', '-m', 'one']);
  return execFileSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
}

describe('provenance materials: the context, ADD <url>, ADD <git> and git contexts, each with its digest', () => {
  let b: Bench;
  let server: Server;
  let port: number;
  let gitd: GitDaemon;
  let libCommit: string;
  let ctxCommit: string;
  const payload = 'downloaded payload\n';
  const secretValue = 'never-in-provenance-7731';

  beforeAll(async () => {
    b = await bench();
    await b.release();
    server = createServer((req, res) => {
      if (req.url === '/data.txt') res.end(payload);
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    libCommit = gitRepo(path.join(b.dir, 'lib'), { 'lib.txt': 'library\n' });
    ctxCommit = gitRepo(path.join(b.dir, 'ctxrepo'), { Dockerfile: `FROM ${BASE}\nCOPY hello.txt /hello.txt\n`, 'hello.txt': 'hi from git\n' });
    gitd = await startGitDaemon({ lib: path.join(b.dir, 'lib'), ctxrepo: path.join(b.dir, 'ctxrepo') });
    await writeFile(path.join(b.dir, 'token'), secretValue);
  });
  afterAll(async () => {
    gitd?.stop();
    await new Promise((r) => server?.close(r));
    await b?.cleanup();
  });

  it('mode=max: base, context, URL and git materials; build-arg, label, target and platform args; secret ids only', async () => {
    const ctx = await b.context({
      Dockerfile: [
        `FROM ${BASE} AS final`,
        'ARG GREETING',
        `ADD http://127.0.0.1:${port}/data.txt /data.txt`,
        `ADD ${gitd.url('lib')} /lib`,
        'COPY local.txt /local.txt',
        'RUN --mount=type=secret,id=token test -s /run/secrets/token',
      ].join('\n'),
      'local.txt': 'local\n',
    });
    const out = path.join(b.dir, 'out-max');
    const r = await runKiln([
      '--root', b.root, 'build', '--provenance', 'mode=max', '--build-arg', 'GREETING=hi', '--label', 'org.example.team=blue', '--target', 'final',
      '--secret', `id=token,src=${path.join(b.dir, 'token')}`, '-o', `type=local,dest=${out}`, '--progress', 'plain', ctx,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const text = await readFile(path.join(out, 'provenance.json'), 'utf8');
    expect(text).not.toContain(secretValue);
    const p = JSON.parse(text).predicate as ProvenanceV02;

    const byUri = new Map(p.materials.map((m) => [m.uri, m.digest]));
    expect(byUri.get(`http://127.0.0.1:${port}/data.txt`)).toEqual({ sha256: createHash('sha256').update(payload).digest('hex') });
    expect(byUri.get(gitd.url('lib'))).toEqual({ sha1: libCommit });
    expect(byUri.get('urn:kiln:context:local')?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect([...byUri.keys()].some((u) => u.startsWith('pkg:docker/localhost/busybox@latest?platform=linux%2Famd64'))).toBe(true);
    expect(p.materials).toHaveLength(4);

    expect(p.invocation.parameters.frontend).toBe('dockerfile.v0');
    expect(p.invocation.parameters.args).toEqual({ 'build-arg:GREETING': 'hi', 'label:org.example.team': 'blue', target: 'final', filename: 'Dockerfile', platform: 'linux/amd64' });
    expect(p.invocation.parameters.secrets).toEqual([{ id: 'token' }]);
    expect(p.invocation.parameters.locals).toEqual([{ name: 'context' }, { name: 'dockerfile' }]);
    expect(p.invocation.configSource.entryPoint).toBe('Dockerfile');
    expect(p.invocation.environment.platform).toBe('linux/amd64');

    // the context material changes with a file of the context, and only then
    const again = path.join(b.dir, 'out-again');
    await writeFile(path.join(ctx, 'local.txt'), 'changed\n');
    expect((await runKiln(['--root', b.root, 'build', '--provenance', 'mode=max', '--secret', `id=token,src=${path.join(b.dir, 'token')}`, '-o', `type=local,dest=${again}`, ctx])).code).toBe(0);
    const p2 = JSON.parse(await readFile(path.join(again, 'provenance.json'), 'utf8')).predicate as ProvenanceV02;
    expect(p2.materials.find((m) => m.uri === 'urn:kiln:context:local')!.digest.sha256).not.toBe(byUri.get('urn:kiln:context:local')!.sha256);
  });

  it('mode=min: build-arg names but no values, no secret ids', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nARG GREETING\nRUN --mount=type=secret,id=token echo "$GREETING" > /g\n` });
    const out = path.join(b.dir, 'out-min');
    const r = await runKiln(['--root', b.root, 'build', '--provenance', 'mode=min', '--build-arg', 'GREETING=value-not-recorded', '--secret', `id=token,src=${path.join(b.dir, 'token')}`, '-o', `type=local,dest=${out}`, ctx]);
    expect(r.code, r.stderr).toBe(0);
    const text = await readFile(path.join(out, 'provenance.json'), 'utf8');
    expect(text).not.toContain('value-not-recorded');
    expect(text).not.toContain(secretValue);
    const p = JSON.parse(text).predicate as ProvenanceV02;
    expect(p.invocation.parameters.args).toEqual({ filename: 'Dockerfile', platform: 'linux/amd64' });
    expect(p.invocation.parameters.argNames).toEqual(['GREETING']);
    expect(p.invocation.parameters.secrets).toBeUndefined();
  });

  it('a git context is the config source and a material, named by its commit', async () => {
    const out = path.join(b.dir, 'out-git');
    const r = await runKiln(['--root', b.root, 'build', '--provenance', 'mode=min', '-o', `type=local,dest=${out}`, gitd.url('ctxrepo')]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readFile(path.join(out, 'hello.txt'), 'utf8')).toBe('hi from git\n');
    const p = JSON.parse(await readFile(path.join(out, 'provenance.json'), 'utf8')).predicate as ProvenanceV02;
    expect(p.invocation.configSource).toEqual({ uri: gitd.url('ctxrepo'), digest: { sha1: ctxCommit }, entryPoint: 'Dockerfile' });
    expect(p.materials).toContainEqual({ uri: gitd.url('ctxrepo'), digest: { sha1: ctxCommit } });
    expect(p.materials.some((m) => m.uri === 'urn:kiln:context:local')).toBe(false);
    expect(p.invocation.parameters.locals).toEqual([]);
  });

  it('credentials in a source URL never reach the provenance', () => {
    const rec: BuildRecord = {
      builderId: 'urn:test', dockerfile: { path: 'Dockerfile', digest: 'sha256:00' }, args: {}, platform: 'linux/amd64',
      configSource: { uri: 'https://user:tok3n@git.example.invalid/r.git#main', digest: { sha1: 'ab' } },
      materials: [{ uri: 'https://user:tok3n@files.example.invalid/a.tgz', digest: { sha256: 'cd' } }],
      startedOn: new Date(0), finishedOn: new Date(0), secrets: [], ssh: [], steps: [],
    };
    for (const v of ['v0.2', 'v1'] as const) {
      const text = JSON.stringify(provenancePredicate(rec, 'max', v));
      expect(text).not.toContain('tok3n');
      expect(text).toContain('https://git.example.invalid/r.git#main');
    }
  });
});
