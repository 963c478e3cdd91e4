import { execFileSync } from 'node:child_process';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { bench, BASE, type Bench } from './helpers.js';

/** `kiln build` end to end through bin/kiln (dist/ is built by `npm test` before vitest runs). */
let b: Bench;

function kiln(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv } = {}): Promise<KilnRun> {
  return runKiln(['--root', b.root, ...args], opts);
}

beforeAll(async () => {
  b = await bench();
});
afterAll(async () => {
  await b.cleanup();
});

describe('kiln build (CLI)', () => {
  it('prints the image ID with -q and writes --iidfile and --metadata-file', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY x.txt /x.txt\n`, 'x.txt': 'x' });
    const iid = path.join(b.dir, 'iid');
    const meta = path.join(b.dir, 'meta.json');
    const r = await kiln(['build', '-q', '-t', 'localhost/cli/q:1', '--iidfile', iid, '--metadata-file', meta, ctx]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(await readFile(iid, 'utf8')).toBe(r.stdout.trim());
    const m = JSON.parse(await readFile(meta, 'utf8')) as Record<string, unknown>;
    expect(m['containerimage.config.digest']).toBe(r.stdout.trim());
    expect(m['containerimage.digest']).toMatch(/^sha256:/);
    expect(m['image.name']).toBe('localhost/cli/q:1');
  });

  it('reads the Dockerfile from stdin with -f -', async () => {
    const ctx = await b.context({ 'y.txt': 'from stdin build' });
    const r = await kiln(['build', '--progress', 'plain', '-f', '-', '-t', 'localhost/cli/stdin:1', ctx], { input: `FROM ${BASE}\nCOPY y.txt /y.txt\n` });
    expect(r.code).toBe(0);
    expect(await b.read('localhost/cli/stdin:1', '/y.txt')).toBe('from stdin build');
  });

  it('fails with one line naming the Dockerfile line, exit 1; usage errors exit 2', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUNN echo hi\n` });
    const r = await kiln(['build', '--progress', 'quiet', ctx]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n').at(-1)).toBe('kiln: Dockerfile:2: unknown instruction "RUNN" (did you mean RUN?)');
    const u = await kiln(['build', '--network', 'bridge', ctx]);
    expect(u.stderr).toContain('--network must be default, none or host');
    expect(u.code).toBe(2);
  });

  it('pushes with --push to the real registry', async () => {
    const reg = inject('registry').anon;
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nCOPY p.txt /p.txt\n`, 'p.txt': 'pushed' });
    const ref = `${reg}/cli/pushed:1`;
    const r = await kiln(['build', '--progress', 'plain', '--push', '-t', ref, '--metadata-file', path.join(b.dir, 'push.json'), ctx]);
    expect(r.stderr).toContain(`built sha256:`);
    expect(r.code).toBe(0);
    const digest = (JSON.parse(await readFile(path.join(b.dir, 'push.json'), 'utf8')) as Record<string, string>)['containerimage.digest'];
    const remote = JSON.parse(execFileSync('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' })) as { Digest: string; Layers: string[] };
    expect(remote.Digest).toBe(digest);
    expect(remote.Layers).toHaveLength(2);
  });

  it('gives a RUN its --secret and keeps it out of every layer, the config and history', async () => {
    const secretValue = `s3cr3t-${Date.now()}`;
    const secretFile = path.join(b.dir, 'token');
    await writeFile(secretFile, secretValue);
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}\nRUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c > /len.txt && cp /run/secrets/tok /leak-attempt-removed && rm /leak-attempt-removed\n`,
    });
    const r = await kiln(['build', '--progress', 'plain', '--secret', `id=tok,src=${secretFile}`, '-t', 'localhost/cli/secret:1', ctx]);
    expect(r.code).toBe(0);
    expect((await b.read('localhost/cli/secret:1', '/len.txt')).trim()).toBe(String(secretValue.length));
    const blobsDir = path.join(b.root, 'blobs', 'sha256');
    for (const name of await readdir(blobsDir)) {
      let bytes = await readFile(path.join(blobsDir, name));
      if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
      expect(bytes.includes(Buffer.from(secretValue)), `blob ${name} holds the secret`).toBe(false);
    }
  });

  it('runs two builds at once on one store; both succeed', async () => {
    const one = await b.context({ Dockerfile: `FROM ${BASE}\nRUN sleep 1 && echo one > /one.txt\nCOPY a.txt /a.txt\n`, 'a.txt': 'a' });
    const two = await b.context({ Dockerfile: `FROM ${BASE}\nRUN sleep 1 && echo two > /two.txt\nCOPY b.txt /b.txt\n`, 'b.txt': 'b' });
    const [r1, r2] = await Promise.all([
      kiln(['build', '--progress', 'plain', '-t', 'localhost/cli/par:1', one]),
      kiln(['build', '--progress', 'plain', '-t', 'localhost/cli/par:2', two]),
    ]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    expect(await b.read('localhost/cli/par:1', '/one.txt')).toBe('one\n');
    expect(await b.read('localhost/cli/par:2', '/two.txt')).toBe('two\n');
    expect(await b.read('localhost/cli/par:2', '/b.txt')).toBe('b');
  });

  it('lists targets and checks a Dockerfile', async () => {
    const ctx = await b.context({ Dockerfile: `FROM ${BASE} AS base\n# the app\nFROM base AS app\nRUN true\n` });
    const r = await kiln(['targets', '-f', path.join(ctx, 'Dockerfile')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/app\s+.*the app/);
    const c = await kiln(['check', '-f', path.join(ctx, 'Dockerfile')]);
    expect(c.stdout + c.stderr).toContain('NoUserInFinalStage');
  });
});
