import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import { rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * A hostile registry on loopback: manifests that never end, that announce
 * gigabytes, and small manifests whose config or child manifest claims to be
 * huge. kiln must refuse each one naming the reference and the 4 MiB limit,
 * and read only a bounded number of bytes (counted by the server) before it
 * gives up.
 */
const MiB = 1024 * 1024;
/** The server stops an endless body by itself after this much, so the test ends whatever kiln does. */
const SERVER_STOP = 512 * MiB;

interface Hostile {
  server: Server;
  addr: string;
  /** Body bytes written per path. */
  sent: Map<string, number>;
}

function json(res: ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const b = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': type, 'content-length': b.length });
  res.end(b);
}

/** Writes `chunk` until the client goes away or SERVER_STOP bytes are out. */
function stream(req: IncomingMessage, res: ServerResponse, sent: Map<string, number>, headers: Record<string, string>): void {
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  res.writeHead(200, headers);
  res.write('{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","annotations":{"x":"');
  let n = 0;
  const pump = (): void => {
    while (n < SERVER_STOP && !res.destroyed) {
      n += chunk.length;
      sent.set(req.url!, n);
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    res.destroy();
  };
  res.on('close', () => sent.set(req.url!, n));
  pump();
}

async function startHostile(): Promise<Hostile> {
  const sent = new Map<string, number>();
  const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
  const bigConfigManifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, digest: sha256(config), size: 3 * 1024 * MiB },
    layers: [],
  }));
  const bigChildIndex = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OCI_INDEX,
    manifests: [{ mediaType: MediaType.OCI_MANIFEST, digest: sha256('x'), size: 2 * 1024 * MiB, platform: { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch } }],
  }));
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (url === '/v2/' || url === '/v2') return json(res, 200, {});
    if (url === '/v2/endless/manifests/latest') return stream(req, res, sent, { 'content-type': MediaType.OCI_MANIFEST });
    if (url === '/v2/announced/manifests/latest') {
      return stream(req, res, sent, { 'content-type': MediaType.OCI_MANIFEST, 'content-length': String(2 * 1024 * MiB) });
    }
    if (url === '/v2/bigconfig/manifests/latest') {
      res.writeHead(200, { 'content-type': MediaType.OCI_MANIFEST, 'content-length': bigConfigManifest.length });
      return res.end(bigConfigManifest);
    }
    if (url === '/v2/bigchild/manifests/latest') {
      res.writeHead(200, { 'content-type': MediaType.OCI_INDEX, 'content-length': bigChildIndex.length });
      return res.end(bigChildIndex);
    }
    if (url.startsWith('/v2/bigconfig/blobs/')) return stream(req, res, sent, { 'content-type': 'application/octet-stream' });
    if (url.startsWith('/v2/bigchild/manifests/sha256:')) return stream(req, res, sent, { 'content-type': MediaType.OCI_MANIFEST });
    json(res, 404, { errors: [{ code: 'NAME_UNKNOWN', message: 'no' }] });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, addr: `127.0.0.1:${(server.address() as AddressInfo).port}`, sent };
}

describe('a registry that sends oversized manifests', () => {
  let h: Hostile;
  let dir: { path: string; cleanup: () => Promise<void> };
  beforeAll(async () => {
    await rebuildIfStale(['registry/client', 'registry/body', 'registry/pull', 'registry/http', 'registry/auth', 'cli/commands/pull']);
    h = await startHostile();
    dir = await tempDir('kiln-hostile-');
  });
  afterAll(async () => {
    h.server.closeAllConnections();
    await new Promise((r) => h.server.close(r));
    await dir.cleanup();
  });

  const pull = (repo: string) => runKiln(['--root', join(dir.path, repo), 'pull', `${h.addr}/${repo}:latest`]);

  it('an endless manifest is cut off after the 4 MiB limit', async () => {
    const r = await pull('endless');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`manifest ${h.addr}/endless:latest`);
    expect(r.stderr).toContain('4 MiB');
    // what kiln read, plus what sat in socket buffers when it hung up: far below the stream's end
    expect(h.sent.get('/v2/endless/manifests/latest')!).toBeLessThan(64 * MiB);
    expect(await readdir(join(dir.path, 'endless', 'blobs', 'sha256'))).toEqual([]);
  });

  it('a manifest announcing 2 GiB is refused before its body is read', async () => {
    const r = await pull('announced');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`manifest ${h.addr}/announced:latest`);
    expect(r.stderr).toContain(`announced ${2 * 1024 * MiB} bytes, over kiln's limit of 4 MiB`);
    expect(h.sent.get('/v2/announced/manifests/latest')!).toBeLessThan(64 * MiB);
  });

  it('a config descriptor claiming 3 GiB is refused without downloading it', async () => {
    const r = await pull('bigconfig');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${h.addr}/bigconfig:latest: image config sha256:`);
    expect(r.stderr).toContain("over kiln's limit of 4 MiB");
    expect([...h.sent.keys()].some((k) => k.startsWith('/v2/bigconfig/blobs/'))).toBe(false);
  });

  it('an index child claiming 2 GiB is refused without fetching it', async () => {
    const r = await pull('bigchild');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${h.addr}/bigchild:latest: manifest sha256:`);
    expect(r.stderr).toContain("over kiln's limit of 4 MiB");
    expect([...h.sent.keys()].some((k) => k.startsWith('/v2/bigchild/manifests/sha256:'))).toBe(false);
  });
});
