import { execFileSync } from 'node:child_process';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Descriptor, Index, Manifest } from '../../src/image/types.js';
import { generateKeyPair } from '../../src/sign/index.js';
import { runKiln } from '../helpers/kiln-cli.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';
import { uniqueRepo } from '../registry/helpers/images.js';

const reg = inject('registry');

function skopeoRaw(ref: string): string {
  return execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' });
}

/** A blob read back from the registry through its HTTP API, as any client would. */
async function registryBlob(repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`http://${reg.anon}/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function registryManifest(repo: string, digest: string): Promise<Manifest> {
  const res = await fetch(`http://${reg.anon}/v2/${repo}/manifests/${digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
  expect(res.status).toBe(200);
  return (await res.json()) as Manifest;
}

/** Debian packages dpkg reports installed in the database at `admindir` (a copy of this Debian 12 machine's: the one the test image carries). */
function dpkgInstalled(admindir: string): string[] {
  return execFileSync('dpkg-query', [`--admindir=${admindir}`, '-W', '-f', '${db:Status-Status} ${Package}\n'], { encoding: 'utf8' })
    .split('\n')
    .filter((l) => l.startsWith('installed '))
    .map((l) => l.slice('installed '.length))
    .sort();
}

describe('SBOM and provenance attestations, annotations and signing through kiln build', () => {
  let b: Bench;
  let ctx: string;
  const secretValue = 'hunter2-not-in-any-blob';
  beforeAll(async () => {
    b = await bench();
    ctx = await b.context({
      Dockerfile: [
        `FROM ${BASE}`,
        'ARG GREETING=hello',
        'COPY status /var/lib/dpkg/status',
        'COPY os-release /etc/os-release',
        'COPY registry /usr/bin/registry',
        'COPY app/ /app/',
        'RUN --mount=type=secret,id=token test -s /run/secrets/token && echo "$GREETING" > /greeting',
      ].join('\n'),
      'app/node_modules/left-pad/package.json': '{"name":"left-pad","version":"1.3.0","license":"WTFPL"}',
      'app/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA': 'Metadata-Version: 2.1\nName: requests\nVersion: 2.31.0\nLicense: Apache-2.0\n\n',
    });
    await copyFile('/var/lib/dpkg/status', path.join(ctx, 'status'));
    // dpkg-query --admindir reads DIR/status (and DIR/updates/, left empty)
    await mkdir(path.join(b.dir, 'dpkg', 'updates'), { recursive: true });
    await copyFile(path.join(ctx, 'status'), path.join(b.dir, 'dpkg', 'status'));
    await copyFile('/etc/os-release', path.join(ctx, 'os-release'));
    await copyFile('/usr/bin/docker-registry', path.join(ctx, 'registry'));
    await writeFile(path.join(b.dir, 'token'), secretValue);
    await b.release();
  });
  afterAll(async () => {
    await b.cleanup();
  });

  it('--sbom --provenance=mode=max --push: an index with the image and an attestation manifest, read back from the registry', async () => {
    const repo = uniqueRepo('attest');
    const ref = `${reg.anon}/${repo}:1`;
    const r = await runKiln([
      '--root', b.root, 'build', '-t', ref, '--push', '--sbom', '--provenance', 'mode=max', '--build-arg', 'GREETING=hi',
      '--secret', `id=token,src=${path.join(b.dir, 'token')}`, '--progress', 'plain', ctx,
    ]);
    expect(r.stderr).not.toMatch(/kiln: /);
    expect(r.code).toBe(0);
    const index = JSON.parse(skopeoRaw(ref)) as Index;
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests).toHaveLength(2);
    const [image, att] = index.manifests as [Descriptor, Descriptor];
    expect(image.platform).toMatchObject({ os: 'linux', architecture: 'amd64' });
    expect(att.platform).toEqual({ architecture: 'unknown', os: 'unknown' });
    expect(att.annotations).toEqual({ 'vnd.docker.reference.digest': image.digest, 'vnd.docker.reference.type': 'attestation-manifest' });

    const am = await registryManifest(repo, att.digest);
    expect(am.layers.map((l) => [l.mediaType, l.annotations?.['in-toto.io/predicate-type']])).toEqual([
      ['application/vnd.in-toto+json', 'https://slsa.dev/provenance/v0.2'],
      ['application/vnd.in-toto+json', 'https://spdx.dev/Document'],
    ]);
    const all: string[] = [];
    const [prov, sbom] = await Promise.all(am.layers.map(async (l) => {
      const text = (await registryBlob(repo, l.digest)).toString('utf8');
      all.push(text);
      return JSON.parse(text) as { _type: string; subject: Array<{ name: string; digest: { sha256: string } }>; predicate: Record<string, unknown> };
    }));
    for (const s of [prov!, sbom!]) {
      expect(s._type).toBe('https://in-toto.io/Statement/v0.1');
      expect(s.subject).toEqual([{ name: `pkg:docker/${reg.anon}/${repo}@1?platform=linux%2Famd64`, digest: { sha256: image.digest.slice('sha256:'.length) } }]);
    }

    // SBOM: every package dpkg reports on this Debian machine, with Debian purls; the Go binary, npm and Python packages
    const doc = sbom!.predicate as { spdxVersion: string; packages: Array<{ name: string; externalRefs: Array<{ referenceLocator: string }> }> };
    expect(doc.spdxVersion).toBe('SPDX-2.3');
    const purls = doc.packages.map((p) => p.externalRefs[0]!.referenceLocator);
    const debs = doc.packages.filter((p) => p.externalRefs[0]!.referenceLocator.startsWith('pkg:deb/debian/')).map((p) => p.name).sort();
    // read from the copy the image got: the machine's own database may change while the suite runs
    expect(debs).toEqual(dpkgInstalled(path.join(b.dir, 'dpkg')));
    expect(purls.filter((p) => p.startsWith('pkg:deb/')).every((p) => /[?&]distro=debian-12(&|$)/.test(p))).toBe(true);
    expect(purls).toContain('pkg:npm/left-pad@1.3.0');
    expect(purls).toContain('pkg:pypi/requests@2.31.0');
    expect(purls.some((p) => p.startsWith('pkg:golang/stdlib@go1.'))).toBe(true);

    // provenance: the base by digest, invocation args (max), steps with cache keys and RUN resource use, never the secret
    const p = prov!.predicate as {
      buildType: string;
      materials: Array<{ uri: string; digest: { sha256: string } }>;
      invocation: { parameters: { args: Record<string, string>; secrets?: Array<{ id: string }> }; configSource: { entryPoint: string } };
      buildConfig: { steps: Array<{ name: string; cacheKey: string; cached: boolean; cpuSeconds?: number }> };
      metadata: { buildStartedOn: string; buildFinishedOn: string };
    };
    const baseManifest = execFileSync('skopeo', ['inspect', '--raw', `oci:${b.root}:${BASE}`]);
    expect(p.materials[0]).toEqual({ uri: 'pkg:docker/localhost/busybox@latest?platform=linux%2Famd64', digest: { sha256: createHash('sha256').update(baseManifest).digest('hex') } });
    // and the local context, by the digest of what COPY could read from it
    expect(p.materials.slice(1).map((m) => m.uri)).toEqual(['urn:kiln:context:local']);
    expect(p.invocation.configSource.entryPoint).toBe('Dockerfile');
    expect(p.invocation.parameters.args).toEqual({ 'build-arg:GREETING': 'hi', filename: 'Dockerfile', platform: 'linux/amd64' });
    expect(p.invocation.parameters.secrets).toEqual([{ id: 'token' }]);
    const run = p.buildConfig.steps.find((s) => s.name.startsWith('RUN '))!;
    expect(run.cacheKey).toMatch(/^sha256:/);
    expect(run.cached).toBe(false);
    expect(typeof run.cpuSeconds).toBe('number');
    expect(Date.parse(p.metadata.buildFinishedOn)).toBeGreaterThanOrEqual(Date.parse(p.metadata.buildStartedOn));
    for (const t of all) expect(t).not.toContain(secretValue);
  });

  it('provenance mode=min is on by default when pushing (buildx), keeps build-arg values out, and BUILDX_NO_DEFAULT_ATTESTATIONS turns it off', async () => {
    const repo = uniqueRepo('attest-default');
    const ref = `${reg.anon}/${repo}:1`;
    const r = await runKiln(['--root', b.root, 'build', '-t', ref, '--push', '--build-arg', 'GREETING=secretish', '--secret', `id=token,src=${path.join(b.dir, 'token')}`, '--progress', 'plain', ctx]);
    expect(r.code).toBe(0);
    const index = JSON.parse(skopeoRaw(ref)) as Index;
    expect(index.manifests).toHaveLength(2);
    const am = await registryManifest(repo, index.manifests[1]!.digest);
    expect(am.layers.map((l) => l.annotations?.['in-toto.io/predicate-type'])).toEqual(['https://slsa.dev/provenance/v0.2']);
    const text = (await registryBlob(repo, am.layers[0]!.digest)).toString('utf8');
    expect(text).not.toContain('secretish');
    expect(JSON.parse(text).predicate.buildConfig).toBeUndefined();

    const ref2 = `${reg.anon}/${repo}:2`;
    expect((await runKiln(['--root', b.root, 'build', '-t', ref2, '--push', '--secret', `id=token,src=${path.join(b.dir, 'token')}`, '--progress', 'plain', ctx], { env: { BUILDX_NO_DEFAULT_ATTESTATIONS: '1' } })).code).toBe(0);
    expect((JSON.parse(skopeoRaw(ref2)) as Manifest).mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
  });

  it('--annotation lands on the manifest, the index and the descriptors it names', async () => {
    const ref = `${reg.anon}/${uniqueRepo('annot')}:1`;
    const meta = path.join(b.dir, 'meta.json');
    const r = await runKiln([
      '--root', b.root, 'build', '-t', ref, '--provenance=false', '--sbom=false', '--secret', `id=token,src=${path.join(b.dir, 'token')}`, '--progress', 'plain',
      '--annotation', 'org.opencontainers.image.title=plain',
      '--annotation', 'manifest[linux/amd64]:com.example.arch=amd64',
      '--annotation', 'manifest[linux/arm64]:com.example.arch=arm64',
      '--annotation', 'index:com.example.where=index',
      '--annotation', 'manifest-descriptor:com.example.where=manifest-descriptor',
      '--annotation', 'index-descriptor:com.example.where=index-descriptor',
      '--metadata-file', meta, ctx,
    ]);
    expect(r.code).toBe(0);
    const layout = JSON.parse(await readFile(path.join(b.root, 'index.json'), 'utf8')) as Index;
    const entry = layout.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === ref)!;
    expect(entry.annotations?.['com.example.where']).toBe('index-descriptor');
    const index = JSON.parse(await readFile(path.join(b.root, 'blobs', 'sha256', entry.digest.slice(7)), 'utf8')) as Index;
    expect(index.annotations).toEqual({ 'com.example.where': 'index' });
    expect(index.manifests[0]!.annotations).toEqual({ 'com.example.where': 'manifest-descriptor' });
    const manifest = JSON.parse(await readFile(path.join(b.root, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as Manifest;
    expect(manifest.annotations).toEqual({ 'org.opencontainers.image.title': 'plain', 'com.example.arch': 'amd64' });
    expect(JSON.parse(await readFile(meta, 'utf8'))['containerimage.digest']).toBe(entry.digest);
    const bad = await runKiln(['--root', b.root, 'build', '--annotation', 'bogus:k=v', ctx]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown type "bogus"/);
  });

  it('type=local carries sbom.spdx.json and provenance.json; type=oci carries the attestation manifest', async () => {
    const local = path.join(b.dir, 'out-local');
    const oci = path.join(b.dir, 'out-oci');
    const r = await runKiln(['--root', b.root, 'build', '--sbom', '--provenance', 'true', '--secret', `id=token,src=${path.join(b.dir, 'token')}`, '--progress', 'plain', '-o', `type=local,dest=${local}`, '-o', `type=oci,dest=${oci},tar=false`, ctx]);
    expect(r.stderr).not.toMatch(/kiln: /);
    expect(r.code).toBe(0);
    const files = await readdir(local);
    expect(files).toEqual(expect.arrayContaining(['sbom.spdx.json', 'provenance.json', 'greeting']));
    expect(JSON.parse(await readFile(path.join(local, 'sbom.spdx.json'), 'utf8')).predicateType).toBe('https://spdx.dev/Document');
    const top = JSON.parse(await readFile(path.join(oci, 'index.json'), 'utf8')) as Index;
    const idx = JSON.parse(await readFile(path.join(oci, 'blobs', 'sha256', top.manifests[0]!.digest.slice(7)), 'utf8')) as Index;
    expect(idx.manifests.map((m) => m.annotations?.['vnd.docker.reference.type'] ?? 'image')).toEqual(['image', 'attestation-manifest']);
  });

  it('--sign-key signs what --push pushed; kiln verify accepts it', async () => {
    const ref = `${reg.anon}/${uniqueRepo('signed-build')}:1`;
    const pair = generateKeyPair('pw', () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
    await mkdir(path.join(b.dir, 'keys'), { recursive: true });
    await writeFile(path.join(b.dir, 'keys', 'k.key'), pair.privatePem);
    await writeFile(path.join(b.dir, 'keys', 'k.pub'), pair.publicPem);
    const r = await runKiln(['--root', b.root, 'build', '-t', ref, '--push', '--sign-key', path.join(b.dir, 'keys', 'k.key'), '--secret', `id=token,src=${path.join(b.dir, 'token')}`, '--progress', 'plain', ctx], { env: { COSIGN_PASSWORD: 'pw' } });
    expect(r.stderr).not.toMatch(/kiln: /);
    expect(r.code).toBe(0);
    const v = await runKiln(['verify', '--key', path.join(b.dir, 'keys', 'k.pub'), ref]);
    expect(v.stdout).toMatch(/^verified sha256:[0-9a-f]{64}: 1 signature/);
    expect(v.code).toBe(0);
  });
});
