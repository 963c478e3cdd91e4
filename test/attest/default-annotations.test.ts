import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Index, Manifest } from '../../src/image/types.js';
import { runKiln } from '../helpers/kiln-cli.js';
import { startGitDaemon, type GitDaemon } from '../helpers/git-daemon.js';
import { bench, type Bench } from '../builder/helpers.js';
import { uniqueRepo } from '../registry/helpers/images.js';

const reg = inject('registry');
const CREATED = 'org.opencontainers.image.created';
const EPOCH = 1700000000;
const EPOCH_TEXT = '2023-11-14T22:13:20Z';

async function layoutJson<T>(dir: string, digest: string): Promise<T> {
  return JSON.parse(await readFile(path.join(dir, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as T;
}

async function registryJson<T>(repo: string, ref: string, accept: string): Promise<T> {
  const res = await fetch(`http://${reg.anon}/v2/${repo}/manifests/${ref}`, { headers: { accept } });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

describe('--default-annotations: org.opencontainers.image.created as BuildKit writes it, reproducible under SOURCE_DATE_EPOCH', () => {
  let b: Bench;
  let ctx: string;
  let gitd: GitDaemon;
  let commit: string;
  beforeAll(async () => {
    b = await bench();
    await b.release();
    ctx = await b.context({ Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': 'a\n' });
    const repo = path.join(b.dir, 'repo');
    execFileSync('git', ['init', '-q', '-b', 'main', repo]);
    execFileSync('cp', [path.join(ctx, 'Dockerfile'), path.join(ctx, 'a.txt'), repo]);
    execFileSync('git', ['-C', repo, 'add', '.']);
    execFileSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', 'commit', '-q', '-m', 'one']);
    commit = execFileSync('git', ['-C', repo, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    gitd = await startGitDaemon({ repo });
  });
  afterAll(async () => {
    gitd?.stop();
    await b?.cleanup();
  });

  it('one platform: on the manifest and the OCI layout entry, from SOURCE_DATE_EPOCH, byte-identical twice; still one manifest, not an index', async () => {
    const digests: string[] = [];
    for (const n of [1, 2]) {
      const out = path.join(b.dir, `oci-${n}`);
      const r = await runKiln(['--root', b.root, 'build', '--default-annotations', '-t', 'example.invalid/app:1', '-o', `type=oci,dest=${out},tar=false`, ctx], { env: { SOURCE_DATE_EPOCH: String(EPOCH) } });
      expect(r.code, r.stderr).toBe(0);
      const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as Index;
      const entry = index.manifests[0]!;
      expect(entry.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(entry.annotations?.[CREATED]).toBe(EPOCH_TEXT);
      expect(entry.annotations?.['org.opencontainers.image.ref.name']).toBe('1');
      const manifest = await layoutJson<Manifest>(out, entry.digest);
      expect(manifest.annotations).toEqual({ [CREATED]: EPOCH_TEXT });
      digests.push(entry.digest);
    }
    expect(digests[1]).toBe(digests[0]);

    // an --annotation of the same key wins; without the flag there is none
    const mine = path.join(b.dir, 'oci-mine');
    expect((await runKiln(['--root', b.root, 'build', '--default-annotations', '--annotation', `${CREATED}=2020-01-01T00:00:00Z`, '-o', `type=oci,dest=${mine},tar=false`, ctx])).code).toBe(0);
    const mineIndex = JSON.parse(await readFile(path.join(mine, 'index.json'), 'utf8')) as Index;
    expect((await layoutJson<Manifest>(mine, mineIndex.manifests[0]!.digest)).annotations?.[CREATED]).toBe('2020-01-01T00:00:00Z');
    const plain = path.join(b.dir, 'oci-plain');
    expect((await runKiln(['--root', b.root, 'build', '-o', `type=oci,dest=${plain},tar=false`, ctx])).code).toBe(0);
    const plainIndex = JSON.parse(await readFile(path.join(plain, 'index.json'), 'utf8')) as Index;
    expect(plainIndex.manifests[0]!.annotations?.[CREATED]).toBeUndefined();
    expect((await layoutJson<Manifest>(plain, plainIndex.manifests[0]!.digest)).annotations).toBeUndefined();
  });

  it('a git context adds source (no fragment) and revision; without SOURCE_DATE_EPOCH created is the build time', async () => {
    const out = path.join(b.dir, 'oci-git');
    const before = Math.floor(Date.now() / 1000) * 1000;
    const r = await runKiln(['--root', b.root, 'build', '--default-annotations', '-o', `type=oci,dest=${out},tar=false`, `${gitd.url('repo')}#main`]);
    expect(r.code, r.stderr).toBe(0);
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as Index;
    const manifest = await layoutJson<Manifest>(out, index.manifests[0]!.digest);
    expect(manifest.annotations?.['org.opencontainers.image.source']).toBe(gitd.url('repo'));
    expect(manifest.annotations?.['org.opencontainers.image.revision']).toBe(commit);
    const created = Date.parse(manifest.annotations![CREATED]!);
    expect(manifest.annotations![CREATED]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(created).toBeGreaterThanOrEqual(before);
    expect(created).toBeLessThanOrEqual(Date.now());
  });

  it('several platforms, pushed: on the index and each manifest; type=local puts each platform\'s attestations in its own directory', async () => {
    const repo = uniqueRepo('default-annotations');
    const ref = `${reg.anon}/${repo}:1`;
    const local = path.join(b.dir, 'local-multi');
    const r = await runKiln(['--root', b.root, '--insecure-registry', reg.anon, 'build', '--platform', 'linux/amd64,linux/arm64', '--default-annotations', '--sbom', '-t', ref, '--push', '-o', `type=local,dest=${local}`, ctx], { env: { SOURCE_DATE_EPOCH: String(EPOCH) } });
    expect(r.code, r.stderr).toBe(0);
    const index = await registryJson<Index>(repo, '1', 'application/vnd.oci.image.index.v1+json');
    expect(index.annotations).toEqual({ [CREATED]: EPOCH_TEXT });
    const images = index.manifests.filter((m) => m.platform?.os === 'linux');
    expect(images.map((m) => m.platform?.architecture)).toEqual(['amd64', 'arm64']);
    for (const m of images) expect((await registryJson<Manifest>(repo, m.digest, 'application/vnd.oci.image.manifest.v1+json')).annotations).toEqual({ [CREATED]: EPOCH_TEXT });

    for (const dir of ['linux_amd64', 'linux_arm64']) {
      expect((await readdir(path.join(local, dir))).filter((f) => f.endsWith('.json')).sort()).toEqual(['provenance.json', 'sbom.spdx.json']);
      const sbom = JSON.parse(await readFile(path.join(local, dir, 'sbom.spdx.json'), 'utf8')) as { subject: Array<{ name: string }> };
      expect(sbom.subject[0]!.name).toBe(`pkg:docker/${reg.anon}/${repo}@1?platform=${encodeURIComponent(dir.replace('_', '/'))}`);
    }
    expect((await readdir(local)).filter((f) => f.endsWith('.json'))).toEqual([]);
  });
});
