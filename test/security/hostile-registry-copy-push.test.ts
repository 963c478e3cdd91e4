import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registrySource } from '../../src/cache/remote/registry.js';
import { KilnError } from '../../src/errors/index.js';
import { sha256, type Digest } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Descriptor } from '../../src/image/types.js';
import { RegistryClient } from '../../src/registry/client.js';
import { parseReference } from '../../src/registry/reference.js';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { tempDir, tempStore } from '../helpers/temp-dir.js';
import { HOST_PLATFORM, serveImage, serveIndex, startHostileRegistry, type HostileRegistry } from './hostile-registry.js';

/**
 * A hostile source for `kiln copy` (digests that are paths, indexes that
 * repeat or nest too deep), the registry client asked to put non-digests
 * into URL paths, and a push destination that lies about the blobs and
 * manifests it holds. Every case counts the requests the server received.
 */
const MiB = 1024 * 1024;

describe('kiln copy, the client and kiln push against a hostile registry', () => {
  let h: HostileRegistry;
  let dir: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    await rebuildIfStale(['registry/client', 'registry/documents', 'registry/copy', 'registry/push', 'registry/reference', 'cli/commands/copy', 'cli/commands/push']);
    h = await startHostileRegistry();
    dir = await tempDir('kiln-hostile-copy-');
  });
  afterAll(async () => {
    await h.close();
    await dir.cleanup();
  });

  const kiln = (root: string, ...args: string[]) => runKiln(['--root', join(dir.path, root), '--insecure-registry', h.addr, ...args]);
  const lastLine = (s: string) => s.trim().split('\n').at(-1)!;
  const destRequests = (repo: string) => h.requests.filter((q) => q.url.startsWith(`/v2/${repo}/`));

  it('copy refuses a blob digest that is a path before the destination sees any request', async () => {
    const dotdot = 'sha256:../../../x/manifests/latest';
    const img = serveImage(h, { layer: { mediaType: MediaType.OCI_LAYER_GZIP, digest: dotdot as Digest, size: 100 }, annotations: { which: 'dotdot' } });
    h.tags.set('dotdot:1', img.descriptor.digest);
    const r = await kiln('copy-dotdot', 'copy', `${h.addr}/dotdot:1`, `${h.addr}/dst-dotdot:1`);
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toBe(`kiln: ${h.addr}/dotdot:1: a blob descriptor has digest "${dotdot}"; kiln accepts only sha256:<64 lowercase hex>`);
    expect(destRequests('dst-dotdot')).toEqual([]);
    expect(h.requests.filter((q) => q.url.includes('/x/manifests'))).toEqual([]);
  });

  it('copy refuses an index entry that names a tag instead of a digest, without fetching it', async () => {
    const img = serveImage(h, { annotations: { which: 'by-tag' } });
    h.tags.set('bytag:latest', img.descriptor.digest);
    h.tags.set('bytag:1', serveIndex(h, [{ ...img.descriptor, digest: 'latest' as Digest }]).digest);
    const r = await kiln('copy-bytag', 'copy', `${h.addr}/bytag:1`, `${h.addr}/dst-bytag:1`);
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toBe(`kiln: ${h.addr}/bytag:1: a manifest descriptor has digest "latest"; kiln accepts only sha256:<64 lowercase hex>`);
    expect(h.count('GET', '/v2/bytag/manifests/')).toBe(1);
    expect(destRequests('dst-bytag')).toEqual([]);
  });

  it('copy --all-platforms fetches and puts a manifest listed 40 times once', async () => {
    const big = serveImage(h, { annotations: { pad: 'q'.repeat(3 * MiB) } });
    const index = serveIndex(h, Array.from({ length: 40 }, () => big.descriptor));
    h.tags.set('cfan:1', index.digest);
    const r = await kiln('copy-fan', 'copy', '--all-platforms', '-q', `${h.addr}/cfan:1`, `${h.addr}/dst-cfan:1`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(h.count('GET', `/v2/cfan/manifests/${big.descriptor.digest}`)).toBe(1);
    expect(h.count('PUT', '/v2/dst-cfan/manifests/')).toBe(2);
    expect(sha256(h.pushedManifests.get(`dst-cfan/${big.descriptor.digest}`)!)).toBe(big.descriptor.digest);
    expect(sha256(h.pushedManifests.get('dst-cfan/1')!)).toBe(index.digest);
  });

  it('copy --all-platforms refuses indexes nested 9 deep before the destination sees any request', async () => {
    let child: Descriptor = serveImage(h, { annotations: { which: 'cdeep' } }).descriptor;
    for (let i = 0; i < 9; i++) child = serveIndex(h, [child], { cdeep: String(i) });
    h.tags.set('cdeep:1', child.digest);
    const r = await kiln('copy-deep', 'copy', '--all-platforms', `${h.addr}/cdeep:1`, `${h.addr}/dst-cdeep:1`);
    expect(r.code).toBe(1);
    expect(lastLine(r.stderr)).toMatch(/is nested 9 indexes deep, over kiln's limit of 8$/);
    expect(h.count('GET', '/v2/cdeep/manifests/')).toBe(9);
    expect(destRequests('dst-cdeep')).toEqual([]);
  });

  it('the client puts nothing but a digest, or the reference\'s own tag, into a URL path', async () => {
    const client = new RegistryClient({ insecureRegistries: [h.addr], credentials: () => Promise.resolve(undefined), retry: { maxAttempts: 1 } });
    const ref = parseReference(`${h.addr}/client:1`);
    const ep = client.endpoint(ref);
    const before = h.requests.length;
    const refused = async (p: Promise<unknown>): Promise<string> => {
      const e: unknown = await p.then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(KilnError);
      return (e as KilnError).message;
    };
    try {
      expect(await refused(client.getManifestFrom(ep, ref, 'sha256:../../x/manifests/latest'))).toContain('is not a sha256:<64 lowercase hex> digest; kiln does not request it');
      // a tag other than the reference's own would skip the digest check of a child
      expect(await refused(client.getManifestFrom(ep, ref, 'latest'))).toContain('manifest "latest" is not a sha256');
      expect(await refused(client.blobSize(ref, 'sha256:../../x' as Digest))).toContain('blob "sha256:../../x" is not a sha256');
      expect(await refused((async () => {
        for await (const c of client.blob(ref, { digest: '../../etc' as Digest, size: 1 })) void c;
      })())).toContain('blob "../../etc" is not a sha256');
      expect(await refused(client.putManifest(ref, '../other/manifests/x', Buffer.from('{}'), MediaType.OCI_MANIFEST))).toContain('is not a sha256:<64 lowercase hex> digest or a tag');
      expect(() => ref.withDigest('latest' as Digest)).toThrow('invalid digest "latest"');
      expect(h.requests.slice(before)).toEqual([]);
    } finally {
      await client.close();
    }
  });

  it('--cache-from refuses an index entry that is not a digest, without fetching it', async () => {
    const img = serveImage(h, { annotations: { which: 'cache' } });
    h.tags.set('cache:latest', img.descriptor.digest);
    h.tags.set('cache:1', serveIndex(h, [{ ...img.descriptor, digest: 'latest' as Digest, platform: HOST_PLATFORM }]).digest);
    const t = await tempStore();
    try {
      const e: unknown = await registrySource(t.store, `${h.addr}/cache:1`, { insecureRegistries: [h.addr], mirrors: [] }, () => undefined).then(() => undefined, (err: unknown) => err);
      expect(e).toBeInstanceOf(KilnError);
      expect((e as KilnError).message).toBe(`${h.addr}/cache:1: a manifest descriptor has digest "latest"; kiln accepts only sha256:<64 lowercase hex>`);
      expect(h.count('GET', '/v2/cache/manifests/')).toBe(1);
    } finally {
      await t.cleanup();
    }
  });

  describe('push to a destination that lies', () => {
    let src: { digest: string; blobs: Descriptor[] };
    beforeAll(async () => {
      const img = serveImage(h, { annotations: { which: 'push' } });
      h.tags.set('psrc:1', img.descriptor.digest);
      const m = JSON.parse(img.manifest.toString()) as { config: Descriptor; layers: Descriptor[] };
      src = { digest: img.descriptor.digest, blobs: [m.config, ...m.layers] };
      const r = await kiln('push', 'pull', '--no-unpack', '-q', `${h.addr}/psrc:1`);
      expect(r.code).toBe(0);
    });

    it('a blob HEAD answering 200 with another Content-Length is not taken as "exists": the blob is uploaded', async () => {
      h.intercept = (req, res, path) => {
        if (req.method !== 'HEAD' || !path.startsWith('/v2/plen/blobs/')) return false;
        res.writeHead(200, { 'content-length': 0, 'docker-content-digest': decodeURIComponent(path.slice('/v2/plen/blobs/'.length)) });
        res.end();
        return true;
      };
      try {
        const r = await kiln('push', 'push', '-q', `${h.addr}/psrc:1`, `${h.addr}/plen:1`);
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(h.count('PUT', '/v2/plen/blobs/uploads/')).toBe(2);
        for (const b of src.blobs) expect(h.pushedBlobs.get(b.digest)?.length).toBe(b.size);
      } finally {
        h.intercept = undefined;
      }
    });

    it('a manifest PUT answered with a Docker-Content-Digest of another algorithm or form fails the push', async () => {
      for (const [repo, answer] of [['psha512', `sha512:${'a'.repeat(128)}`], ['pjunk', 'not-a-digest']] as const) {
        h.intercept = (req, res, path) => {
          if (req.method !== 'PUT' || !path.startsWith(`/v2/${repo}/manifests/`)) return false;
          req.resume();
          req.on('end', () => {
            res.writeHead(201, { 'docker-content-digest': answer, 'content-length': 0 });
            res.end();
          });
          return true;
        };
        try {
          const r = await kiln('push', 'push', '-q', `${h.addr}/psrc:1`, `${h.addr}/${repo}:1`);
          expect(r.code).toBe(1);
          expect(lastLine(r.stderr)).toBe(`kiln: manifest ${h.addr}/${repo}:1: registry answered Docker-Content-Digest "${answer}", but kiln sent ${src.digest}`);
          expect(r.stdout).toBe('');
        } finally {
          h.intercept = undefined;
        }
      }
    });
  });
});
