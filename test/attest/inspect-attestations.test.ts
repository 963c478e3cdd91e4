import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKiln } from '../helpers/kiln-cli.js';
import { bench, type Bench } from '../builder/helpers.js';

type Listed = Array<{ platform: string; digest: string; manifest: string; statements: Array<{ predicateType: string; digest: string; size: number; statement: { subject: Array<{ digest: { sha256: string } }>; predicate: { name?: string } } }> }>;

describe('kiln inspect --attestations: the attestation manifests of a stored index and their statements', () => {
  let b: Bench;
  let ctx: string;
  beforeAll(async () => {
    b = await bench();
    await b.release();
    ctx = await b.context({ Dockerfile: 'FROM scratch\nCOPY a.txt /a.txt\n', 'a.txt': 'a\n' });
  });
  afterAll(async () => {
    await b?.cleanup();
  });

  it('per platform: provenance and SBOM statements about that image; --platform picks one; an image without any says so', async () => {
    const built = await runKiln(['--root', b.root, 'build', '--platform', 'linux/amd64,linux/arm64', '--sbom', '--provenance', 'mode=max', '-t', 'example.invalid/att:1', ctx]);
    expect(built.code, built.stderr).toBe(0);
    const r = await runKiln(['--root', b.root, 'inspect', 'example.invalid/att:1', '--attestations', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const listed = JSON.parse(r.stdout) as Listed;
    expect(listed.map((a) => a.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    for (const a of listed) {
      expect(a.statements.map((s) => s.predicateType)).toEqual(['https://slsa.dev/provenance/v0.2', 'https://spdx.dev/Document']);
      for (const s of a.statements) expect(s.statement.subject[0]!.digest.sha256).toBe(a.digest.slice('sha256:'.length));
    }

    const text = await runKiln(['--root', b.root, 'inspect', 'example.invalid/att:1', '--attestations', '--platform', 'linux/arm64']);
    expect(text.code, text.stderr).toBe(0);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toBe(`linux/arm64  ${listed[1]!.digest}  (attestation manifest ${listed[1]!.manifest})`);
    expect(lines.slice(1).map((l) => l.trim().split(/\s+/)[0])).toEqual(['https://slsa.dev/provenance/v0.2', 'https://spdx.dev/Document']);

    expect((await runKiln(['--root', b.root, 'build', '-t', 'example.invalid/plain:1', ctx])).code).toBe(0);
    const none = await runKiln(['--root', b.root, 'inspect', 'example.invalid/plain:1', '--attestations']);
    expect(none.code, none.stderr).toBe(0);
    expect(none.stdout.trim()).toBe('example.invalid/plain:1: no attestations');
  });
});
