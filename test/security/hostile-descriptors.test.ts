import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * A hostile registry on loopback whose manifests carry descriptors that are
 * not digests: a "sha256:" followed by a relative path out of the store, a
 * digest of another algorithm, a negative size. A digest becomes a file name
 * in the store (blobs/sha256/<hex>, tmp/partial/<hex>): kiln must refuse the
 * manifest before any download, and write nothing outside its store.
 */
const MiB = 1024 * 1024;

function send(res: ServerResponse, type: string, body: Buffer): void {
  res.writeHead(200, { 'content-type': type, 'content-length': body.length });
  res.end(body);
}

describe('a registry that sends descriptors with hostile digests', () => {
  let server: Server;
  let addr: string;
  let dir: { path: string; cleanup: () => Promise<void> };
  let outside: string;
  const blobRequests: string[] = [];

  beforeAll(async () => {
    await rebuildIfStale(['registry/pull', 'registry/client', 'store/partial-blob', 'store/store', 'cli/commands/pull']);
    dir = await tempDir('kiln-hostile-desc-');
    outside = join(dir.path, 'outside');
    await mkdir(outside);
    const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:0000000000000000000000000000000000000000000000000000000000000000"]}}');
    const manifest = (layer: { digest: string; size: number }): Buffer =>
      Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        config: { mediaType: MediaType.OCI_CONFIG, digest: sha256(config), size: config.length },
        layers: [{ mediaType: MediaType.OCI_LAYER_GZIP, ...layer }],
      }));
    // from <root>/tmp/partial (and <root>/blobs/sha256) up to the temp dir, then into outside/
    const traversal = `sha256:../../../outside/pwned`;
    const manifests: Record<string, Buffer> = {
      traversal: manifest({ digest: traversal, size: 5 * MiB }),
      sha512: manifest({ digest: `sha512:${'ab'.repeat(64)}`, size: 5 * MiB }),
      negative: manifest({ digest: sha256('x'), size: -1 }),
    };
    server = createServer((req, res) => {
      const url = req.url ?? '';
      if (url === '/v2/' || url === '/v2') return send(res, 'application/json', Buffer.from('{}'));
      const m = /^\/v2\/([a-z0-9]+)\/manifests\/latest$/.exec(url);
      if (m && manifests[m[1]!]) return send(res, MediaType.OCI_MANIFEST, manifests[m[1]!]!);
      if (url.includes('/blobs/')) {
        blobRequests.push(url);
        if (url.endsWith(sha256(config))) return send(res, MediaType.OCI_CONFIG, config);
        return send(res, 'application/octet-stream', Buffer.alloc(5 * MiB, 0x41));
      }
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"NAME_UNKNOWN","message":"no"}]}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    await dir.cleanup();
  });

  const pull = (repo: string) => runKiln(['--root', join(dir.path, 'root'), 'pull', `${addr}/${repo}:latest`]);

  it('a layer digest that is a path out of the store is refused; nothing is written outside', async () => {
    const r = await pull('traversal');
    expect(r.code).toBe(1);
    expect(await readdir(outside)).toEqual([]);
    expect(r.stderr).toContain(`${addr}/traversal:latest: a blob descriptor has digest "sha256:../../../outside/pwned"`);
    expect(blobRequests.filter((u) => u.includes('outside'))).toEqual([]);
  });

  it('a digest of another algorithm is refused with the reason', async () => {
    const r = await pull('sha512');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('kiln accepts only sha256:<64 lowercase hex>');
    expect(blobRequests.filter((u) => u.includes('sha512'))).toEqual([]);
  });

  it('a negative size is refused', async () => {
    const r = await pull('negative');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('has an invalid size -1');
  });
});
