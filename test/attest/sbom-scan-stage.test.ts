import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Index, Manifest } from '../../src/image/types.js';
import { parseAttestSpec } from '../../src/builder/attestations.js';
import { runKiln } from '../helpers/kiln-cli.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';
import { uniqueRepo } from '../registry/helpers/images.js';

const reg = inject('registry');

type Spdx = { name: string; packages: Array<{ name: string; externalRefs: Array<{ referenceLocator: string }> }> };
type SpdxStatement = { predicateType: string; subject: Array<{ name: string; digest: { sha256: string } }>; predicate: Spdx };

const purls = (doc: Spdx) => doc.packages.flatMap((p) => p.externalRefs.map((r) => r.referenceLocator));

/** A Dockerfile with a scanned build stage, an unscanned one, one never built, and context scanning asked by the target. */
const DOCKERFILE = [
  `FROM ${BASE} AS deps`,
  'ARG BUILDKIT_SBOM_SCAN_STAGE=true',
  // the scan args steer the scanner only: RUN never sees them (as in BuildKit)
  'RUN test -z "$BUILDKIT_SBOM_SCAN_STAGE" && mkdir -p /app/node_modules/left-pad && printf \'{"name":"left-pad","version":"1.3.0"}\' > /app/node_modules/left-pad/package.json',
  `FROM ${BASE} AS other`,
  'RUN mkdir -p /node_modules/is-even && printf \'{"name":"is-even","version":"1.0.0"}\' > /node_modules/is-even/package.json',
  `FROM ${BASE} AS unused`,
  'ARG BUILDKIT_SBOM_SCAN_STAGE=true',
  `FROM ${BASE}`,
  'ARG BUILDKIT_SBOM_SCAN_CONTEXT=true',
  'COPY --from=deps /app/node_modules/left-pad/package.json /left-pad.json',
  'COPY --from=other /node_modules/is-even/package.json /is-even.json',
].join('\n');

describe('SBOMs of build stages and of the context (BUILDKIT_SBOM_SCAN_STAGE / _CONTEXT, --attest type=sbom,scan-stage=true)', () => {
  let b: Bench;
  let ctx: string;
  beforeAll(async () => {
    b = await bench();
    await b.release();
    ctx = await b.context({ Dockerfile: DOCKERFILE, 'vendor/node_modules/is-odd/package.json': '{"name":"is-odd","version":"3.0.1"}' });
  });
  afterAll(async () => {
    await b?.cleanup();
  });

  it('pushed: the image SBOM first, then one per scanned stage and the context, all about the image, read back from the registry', async () => {
    const repo = uniqueRepo('scan-stage');
    const ref = `${reg.anon}/${repo}:1`;
    const r = await runKiln(['--root', b.root, '--insecure-registry', reg.anon, 'build', '-t', ref, '--push', '--sbom', '--provenance=false', '--progress', 'plain', ctx]);
    expect(r.code, r.stderr).toBe(0);
    const index = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], { encoding: 'utf8' })) as Index;
    const [image, att] = index.manifests;
    const am = (await (await fetch(`http://${reg.anon}/v2/${repo}/manifests/${att!.digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } })).json()) as Manifest;
    expect(am.layers.map((l) => l.annotations?.['in-toto.io/predicate-type'])).toEqual(['https://spdx.dev/Document', 'https://spdx.dev/Document', 'https://spdx.dev/Document']);
    const statements = await Promise.all(am.layers.map(async (l) => JSON.parse(await (await fetch(`http://${reg.anon}/v2/${repo}/blobs/${l.digest}`)).text()) as SpdxStatement));
    for (const s of statements) expect(s.subject).toEqual([{ name: `pkg:docker/${reg.anon}/${repo}@1?platform=linux%2Famd64`, digest: { sha256: image!.digest.slice(7) } }]);
    const [core, deps, context] = statements.map((s) => s.predicate);
    // the image holds copies of the package.json files, outside node_modules: no npm package of its own
    expect(purls(core!).filter((p) => p.startsWith('pkg:npm/'))).toEqual([]);
    expect(deps!.name).toBe('sbom-deps');
    expect(purls(deps!)).toContain('pkg:npm/left-pad@1.3.0');
    expect(purls(deps!)).not.toContain('pkg:npm/is-even@1.0.0');
    expect(context!.name).toBe('sbom-context');
    expect(purls(context!)).toContain('pkg:npm/is-odd@3.0.1');
  });

  it('type=local writes sbom.spdx.json and sbom-<stage>.spdx.json; --build-arg overrides a declared scan arg', async () => {
    const out = path.join(b.dir, 'out-local');
    const r = await runKiln(['--root', b.root, 'build', '--sbom', '--build-arg', 'BUILDKIT_SBOM_SCAN_CONTEXT=false', '-o', `type=local,dest=${out}`, ctx]);
    expect(r.code, r.stderr).toBe(0);
    const files = (await readdir(out)).filter((f) => f.endsWith('.spdx.json')).sort();
    expect(files).toEqual(['sbom-deps.spdx.json', 'sbom.spdx.json']);
    const deps = JSON.parse(await readFile(path.join(out, 'sbom-deps.spdx.json'), 'utf8')) as SpdxStatement;
    expect(purls(deps.predicate)).toContain('pkg:npm/left-pad@1.3.0');
  });

  it('scan-stage=true scans every built stage but the target (never one that was not built); a stage-name list picks stages', async () => {
    const out = path.join(b.dir, 'out-all');
    const r = await runKiln(['--root', b.root, 'build', '--sbom', 'scan-stage=true,scan-context=false', '--build-arg', 'BUILDKIT_SBOM_SCAN_CONTEXT=false', '-o', `type=local,dest=${out}`, ctx]);
    expect(r.code, r.stderr).toBe(0);
    expect((await readdir(out)).filter((f) => f.endsWith('.spdx.json')).sort()).toEqual(['sbom-deps.spdx.json', 'sbom-other.spdx.json', 'sbom.spdx.json']);
    const other = JSON.parse(await readFile(path.join(out, 'sbom-other.spdx.json'), 'utf8')) as SpdxStatement;
    expect(purls(other.predicate)).toContain('pkg:npm/is-even@1.0.0');

    // BUILDKIT_SBOM_SCAN_STAGE=other,unused in deps: deps is not in the list, so nothing besides the image
    const listed = path.join(b.dir, 'out-list');
    const r2 = await runKiln(['--root', b.root, 'build', '--sbom', '--build-arg', 'BUILDKIT_SBOM_SCAN_STAGE=other,unused', '--build-arg', 'BUILDKIT_SBOM_SCAN_CONTEXT=false', '-o', `type=local,dest=${listed}`, ctx]);
    expect(r2.code, r2.stderr).toBe(0);
    expect((await readdir(listed)).filter((f) => f.endsWith('.spdx.json'))).toEqual(['sbom.spdx.json']);
  });

  it('--attest attributes: scan-stage and scan-context take true or false', () => {
    expect(parseAttestSpec('type=sbom,scan-stage=true')).toEqual({ sbom: { scanStage: true } });
    expect(parseAttestSpec('type=sbom,scan-context=false')).toEqual({ sbom: { scanContext: false } });
    expect(() => parseAttestSpec('type=sbom,scan-stage=yes')).toThrow(/scan-stage must be true or false/);
  });
});
