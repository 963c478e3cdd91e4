import { execFile, execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Descriptor, Index, Manifest } from '../../src/image/types.js';
import { MediaType } from '../../src/image/media-types.js';
import { readLayer } from '../../src/layer/tar-reader.js';
import { bench, type Bench } from '../builder/helpers.js';
import { runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { uniqueRepo } from '../registry/helpers/images.js';

const reg = inject('registry');
const REPO_ROOT = path.resolve(import.meta.dirname, '..', '..');
/** Built once per machine by scripts/debian-base-rootfs.sh (mmdebstrap from Debian's mirror), then reused. */
const FIXTURES = path.join(process.env['KILN_TEST_FOREIGN_DIR'] ?? '/var/lib/kiln-test', 'debian');
const ARCHES = ['amd64', 'arm64'] as const;

function ok(r: KilnRun): KilnRun {
  expect(r.stderr).not.toMatch(/kiln: /);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

async function registryJson<T>(repo: string, ref: string, accept: string): Promise<T> {
  const res = await fetch(`http://${reg.anon}/v2/${repo}/manifests/${ref}`, { headers: { accept } });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

async function registryBlob(repo: string, digest: string): Promise<Buffer> {
  const res = await fetch(`http://${reg.anon}/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** One file out of a gzip layer blob, read with kiln's own layer tar reader. */
async function fileInLayer(layer: Buffer, name: string): Promise<string | undefined> {
  let found: string | undefined;
  for await (const { header, body } of readLayer(Readable.from([layer]), MediaType.OCI_LAYER_GZIP)) {
    if (header.name.replace(/^\.?\//, '') !== name) continue;
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c);
    found = Buffer.concat(parts).toString('utf8');
  }
  return found;
}

type SpdxPackage = { name: string; versionInfo: string; externalRefs: Array<{ referenceType: string; referenceLocator: string }> };
type ProvenanceV02 = { materials: Array<{ uri: string; digest: { sha256: string } }>; invocation: { environment: { platform: string } } };

/**
 * The "done means": a multi-platform image on a real Debian bookworm base (made here with mmdebstrap, since
 * Docker Hub is out of reach), pushed with --sbom and --provenance, carries per platform an SBOM that lists exactly the
 * packages dpkg-query reports inside that image, each with its Debian purl, and a provenance naming the base by digest.
 */
describe('a pushed linux/amd64 + linux/arm64 image on a Debian bookworm base', () => {
  let b: Bench;
  const baseRepo = uniqueRepo('debian');
  const base = `${reg.anon}/${baseRepo}:bookworm`;
  const appRepo = uniqueRepo('debian-app');
  const app = `${reg.anon}/${appRepo}:1`;

  beforeAll(async () => {
    // both architectures at once: most of the time is the mirror and qemu, not this machine's cores
    await Promise.all(ARCHES.map((a) => promisify(execFile)('bash', [path.join(REPO_ROOT, 'scripts', 'debian-base-rootfs.sh'), a, path.join(FIXTURES, `bookworm-${a}.tar`)], { maxBuffer: 16 << 20 })));
    b = await bench();
    await b.release();
    // the base image, made by kiln itself from the two root file systems (the fixture dir is its context)
    const baseDockerfile = path.join(b.dir, 'Dockerfile.base');
    await writeFile(baseDockerfile, 'FROM scratch\nARG TARGETARCH\nADD bookworm-${TARGETARCH}.tar /\nCMD ["bash"]\n');
    ok(await runKiln(['--root', b.root, '--insecure-registry', reg.anon, 'build', '--platform', 'linux/amd64,linux/arm64', '-f', baseDockerfile, '-t', base, '--push', '--provenance=false', '--progress', 'plain', FIXTURES]));
    // the application, in a store that has never seen the base: it is pulled from the registry by digest
    const ctx = path.join(b.dir, 'app');
    await mkdir(ctx);
    await writeFile(path.join(ctx, 'Dockerfile'), `FROM ${base}\nRUN dpkg-query -W -f '\${db:Status-Status} \${Package} \${Version} \${Architecture}\\n' > /dpkg-installed.txt\n`);
    ok(await runKiln(['--root', path.join(b.dir, 'root-app'), '--insecure-registry', reg.anon, 'build', '--platform', 'linux/amd64,linux/arm64', '-t', app, '--push', '--sbom', '--provenance', 'mode=max', '--progress', 'plain', ctx]));
  }, 20 * 60_000);
  afterAll(async () => {
    await b?.cleanup();
  });

  it('per platform: an SBOM listing exactly what dpkg-query reports in the image, with Debian purls, and a provenance naming the base by digest', async () => {
    const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${app}`], { encoding: 'utf8' })) as Index;
    expect(index.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`)).toEqual(['linux/amd64', 'unknown/unknown', 'linux/arm64', 'unknown/unknown']);
    const baseIndex = await registryJson<Index>(baseRepo, 'bookworm', 'application/vnd.oci.image.index.v1+json');
    for (const [i, arch] of ARCHES.entries()) {
      const image = index.manifests[i * 2]!;
      const att = index.manifests[i * 2 + 1]!;
      expect(att.annotations).toEqual({ 'vnd.docker.reference.digest': image.digest, 'vnd.docker.reference.type': 'attestation-manifest' });

      // what dpkg-query printed inside this platform's image (run through qemu for arm64), read from the pushed layer
      const manifest = await registryJson<Manifest>(appRepo, image.digest, 'application/vnd.oci.image.manifest.v1+json');
      const listed = await fileInLayer(await registryBlob(appRepo, manifest.layers.at(-1)!.digest), 'dpkg-installed.txt');
      const installed = listed!.split('\n').filter((l) => l.startsWith('installed ')).map((l) => l.slice('installed '.length)).sort();
      expect(installed.length).toBeGreaterThan(80);
      expect(installed.some((l) => l.startsWith('bash ') && l.endsWith(` ${arch}`))).toBe(true);

      const am = await registryJson<Manifest>(appRepo, att.digest, 'application/vnd.oci.image.manifest.v1+json');
      const statements = await Promise.all(am.layers.map(async (l: Descriptor) => ({
        type: l.annotations?.['in-toto.io/predicate-type'],
        body: JSON.parse((await registryBlob(appRepo, l.digest)).toString('utf8')) as { subject: Array<{ name: string; digest: { sha256: string } }>; predicate: unknown },
      })));
      expect(statements.map((s) => s.type)).toEqual(['https://slsa.dev/provenance/v0.2', 'https://spdx.dev/Document']);
      for (const s of statements) expect(s.body.subject).toEqual([{ name: `pkg:docker/${reg.anon}/${appRepo}@1?platform=linux%2F${arch}`, digest: { sha256: image.digest.slice(7) } }]);

      // SBOM: name, version and architecture of every Debian package, nothing more, nothing less
      const packages = (statements[1]!.body.predicate as { packages: SpdxPackage[] }).packages;
      const debs = packages.filter((p) => p.externalRefs.some((r) => r.referenceType === 'purl' && r.referenceLocator.startsWith('pkg:deb/')));
      const purlOf = (p: SpdxPackage) => p.externalRefs.find((r) => r.referenceType === 'purl')!.referenceLocator;
      const fromSbom = debs.map((p) => `${p.name} ${p.versionInfo} ${new URL(purlOf(p).replace(/^pkg:/, 'pkg://')).searchParams.get('arch')}`).sort();
      expect(fromSbom).toEqual(installed);
      for (const p of debs) {
        const u = purlOf(p);
        expect(u.startsWith(`pkg:deb/debian/${encodeURIComponent(p.name)}@${encodeURIComponent(p.versionInfo).replace(/%3A/g, ':')}?`)).toBe(true);
        expect(new URL(u.replace(/^pkg:/, 'pkg://')).searchParams.get('distro')).toBe('debian-12');
      }

      // provenance: this platform's base manifest by digest (and not the other platform's)
      const baseManifest = baseIndex.manifests.find((m) => m.platform?.architecture === arch)!;
      const prov = statements[0]!.body.predicate as ProvenanceV02;
      expect(prov.materials.filter((m) => m.uri.startsWith('pkg:docker/'))).toEqual([{ uri: `pkg:docker/${reg.anon}/${baseRepo}@bookworm?platform=linux%2F${arch}`, digest: { sha256: baseManifest.digest.slice(7) } }]);
      expect(prov.invocation.environment.platform).toBe(`linux/${arch}`);
    }
  });
});
