import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { push, parseReference } from '../src/registry/index.js';
import { makeRandomImage, tempStore, uniqueRepo } from '../test/registry/helpers/images.js';
import { corporaDir } from './runner.js';

const reg = inject('registry');

/**
 * The rows of distribution-spec/CHECKLIST.md that apply to an image kiln pushes:
 * kiln's pusher (section 2) against the Distribution registry the tests use,
 * then the pull rows (section 1) read back over plain HTTP. The chunked, mount
 * and fault rows are exercised by test/registry (fake registries and proxies).
 */
describe('distribution-spec checklist: what kiln pushes reads back as the spec says', () => {
  let src: Awaited<ReturnType<typeof tempStore>>;
  beforeAll(async () => (src = await tempStore()));
  afterAll(async () => src.dispose());

  it('the checklist is in the corpora', () => {
    expect(existsSync(join(corporaDir(), 'distribution-spec', 'CHECKLIST.md'))).toBe(true);
  });

  // The row on invalid digests (400 or 404) checks the registry alone: Distribution answers 500, nothing kiln sends.
  it('pull rows: HEAD/GET of blobs and manifests by tag and digest, 404s', async () => {
    const repo = uniqueRepo();
    const ref = `${reg.anon}/${repo}:v1`;
    const img = await makeRandomImage(src.store, parseReference(ref).toString(), [1000, 0]);
    const pushed = await push(src.store, ref);
    const base = `http://${reg.anon}/v2/${repo}`;
    const layer = img.manifest.layers[0]!;

    const missing = `sha256:${'0'.repeat(64)}`;
    expect((await fetch(`${base}/blobs/${missing}`, { method: 'HEAD' })).status).toBe(404);
    expect((await fetch(`${base}/blobs/${missing}`)).status).toBe(404);
    const head = await fetch(`${base}/blobs/${layer.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(layer.size));
    const dcd = head.headers.get('docker-content-digest');
    if (dcd !== null) expect(dcd).toBe(layer.digest);
    const blob = await fetch(`${base}/blobs/${layer.digest}`);
    expect(blob.status).toBe(200);
    expect(Buffer.from(await blob.arrayBuffer()).equals(img.layers[0]!)).toBe(true);

    const accept = { accept: img.descriptor.mediaType };
    expect((await fetch(`${base}/manifests/nosuchtag`, { method: 'HEAD', headers: accept })).status).toBe(404);
    expect((await fetch(`${base}/manifests/nosuchtag`, { headers: accept })).status).toBe(404);
    const stored = await src.store.readBlob(pushed.digest);
    for (const r of ['v1', pushed.digest]) {
      const h = await fetch(`${base}/manifests/${r}`, { method: 'HEAD', headers: accept });
      expect(h.status).toBe(200);
      expect(h.headers.get('content-type')).toBe(img.descriptor.mediaType);
      expect(h.headers.get('content-length')).toBe(String(stored.length));
      const g = await fetch(`${base}/manifests/${r}`, { headers: accept });
      expect(g.status).toBe(200);
      expect(g.headers.get('docker-content-digest')).toBe(pushed.digest);
      expect(Buffer.from(await g.arrayBuffer()).equals(stored)).toBe(true);
    }
  });
});
