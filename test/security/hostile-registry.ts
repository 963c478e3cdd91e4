import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Descriptor, Manifest } from '../../src/image/types.js';

/**
 * A small registry on 127.0.0.1 for the hostile-registry tests: it serves
 * whatever documents and blobs a test puts in its maps (by digest, from any
 * repository; tags per repository), accepts pushes, and records every
 * request. A test makes it hostile through `intercept`, which sees each
 * request first. It stops by itself: after STOP_AFTER_MS, or at its
 * MAX_REQUESTS-th request (the sockets of any later one are destroyed), so a
 * kiln that loops cannot keep a test running.
 */
const STOP_AFTER_MS = 110_000;
const MAX_REQUESTS = 5000;

export interface RecordedRequest {
  method: string;
  url: string;
  /** Body bytes of the manifest or blob the server sent (not counted for intercepted requests). */
  sent: number;
}

export interface HostileRegistry {
  addr: string;
  requests: RecordedRequest[];
  /** Manifests and indexes by digest (any repository). */
  manifests: Map<string, Buffer>;
  /** `repo:tag` → digest. */
  tags: Map<string, string>;
  blobs: Map<string, Buffer>;
  /** What kiln pushed: manifests under `repo/identifier`, blobs by digest. */
  pushedManifests: Map<string, Buffer>;
  pushedBlobs: Map<string, Buffer>;
  /** Sees each request first; returns true when it has answered. */
  intercept: ((req: IncomingMessage, res: ServerResponse, path: string) => boolean) | undefined;
  /** Requests whose path starts with `prefix`. */
  count(method: string, prefix: string): number;
  close(): Promise<void>;
}

export async function startHostileRegistry(): Promise<HostileRegistry> {
  const requests: RecordedRequest[] = [];
  let uploads = 0;
  const sessions = new Map<string, Buffer[]>();
  const h: HostileRegistry = {
    addr: '',
    requests,
    manifests: new Map(),
    tags: new Map(),
    blobs: new Map(),
    pushedManifests: new Map(),
    pushedBlobs: new Map(),
    intercept: undefined,
    count: (method, prefix) => requests.filter((r) => r.method === method && r.url.startsWith(prefix)).length,
    close: async () => {
      clearTimeout(timer);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
  const server = createServer((req, res) => {
    const rec: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', sent: 0 };
    requests.push(rec);
    if (requests.length > MAX_REQUESTS) return void req.socket.destroy();
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (h.intercept?.(req, res, path)) return;
    if (path === '/v2/' || path === '/v2') return json(res, 200, {});
    let m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path);
    if (m) {
      const [, repo, id] = m as unknown as [string, string, string];
      if (req.method === 'PUT') {
        return void readAll(req).then((b) => {
          h.pushedManifests.set(`${repo}/${id}`, b);
          res.writeHead(201, { 'docker-content-digest': sha256(b), location: `/v2/${repo}/manifests/${sha256(b)}` });
          res.end();
        });
      }
      const body = h.manifests.get(id.startsWith('sha256:') ? id : h.tags.get(`${repo}:${id}`) ?? '');
      if (!body) return json(res, 404, { errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' }] });
      const type = (JSON.parse(body.toString()) as { mediaType: string }).mediaType;
      res.writeHead(200, { 'content-type': type, 'content-length': body.length, 'docker-content-digest': sha256(body) });
      if (req.method === 'HEAD') return void res.end();
      rec.sent = body.length;
      return void res.end(body);
    }
    m = /^\/v2\/(.+)\/blobs\/uploads\/(.*)$/.exec(path);
    if (m) {
      const [, repo, id] = m as unknown as [string, string, string];
      if (req.method === 'POST') {
        req.resume();
        const n = `u${++uploads}`;
        sessions.set(n, []);
        res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${n}`, range: '0-0', 'content-length': 0 });
        return void res.end();
      }
      const parts = sessions.get(id);
      if (!parts) return json(res, 404, { errors: [{ code: 'BLOB_UPLOAD_UNKNOWN', message: 'no' }] });
      return void readAll(req).then((b) => {
        parts.push(b);
        if (req.method === 'PATCH') {
          const n = parts.reduce((a, p) => a + p.length, 0);
          res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}`, range: `0-${n - 1}`, 'content-length': 0 });
          return void res.end();
        }
        const digest = new URL(req.url ?? '/', 'http://x').searchParams.get('digest') ?? '';
        const all = Buffer.concat(parts);
        if (sha256(all) !== digest) return json(res, 400, { errors: [{ code: 'DIGEST_INVALID', message: 'digest' }] });
        h.pushedBlobs.set(digest, all);
        res.writeHead(201, { 'docker-content-digest': digest, location: `/v2/${repo}/blobs/${digest}`, 'content-length': 0 });
        res.end();
      });
    }
    m = /^\/v2\/(.+)\/blobs\/([^/]+)$/.exec(path);
    if (m) {
      const digest = decodeURIComponent(m[2]!);
      const b = h.blobs.get(digest) ?? h.pushedBlobs.get(digest);
      if (!b) return json(res, 404, { errors: [{ code: 'BLOB_UNKNOWN', message: 'blob unknown' }] });
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': b.length, 'docker-content-digest': digest });
      if (req.method === 'HEAD') return void res.end();
      rec.sent = b.length;
      return void res.end(b);
    }
    json(res, 404, { errors: [{ code: 'NAME_UNKNOWN', message: 'no' }] });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const timer = setTimeout(() => {
    server.closeAllConnections();
    server.close();
  }, STOP_AFTER_MS);
  timer.unref();
  h.addr = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return h;
}

export function json(res: ServerResponse, status: number, body: unknown): void {
  const b = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': b.length });
  res.end(b);
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

/** This host's platform in OCI terms, so a single-platform pull picks the entry a test means. */
export const HOST_PLATFORM = { os: 'linux', architecture: process.arch === 'x64' ? 'amd64' : process.arch };

/** An empty tar (two zero blocks), gzipped: a layer every unpacker accepts. */
const EMPTY_TAR = Buffer.alloc(1024);
const EMPTY_LAYER = gzipSync(EMPTY_TAR);

export interface ServedImage {
  manifest: Buffer;
  descriptor: Descriptor;
  config: Buffer;
}

/**
 * Puts a one-layer image into the registry's maps and returns its manifest.
 * `diffIds` overrides the config's list (to make the image inconsistent);
 * `annotations` pad or vary the manifest.
 */
export function serveImage(h: HostileRegistry, opts: { diffIds?: string[]; annotations?: Record<string, string>; layer?: Descriptor } = {}): ServedImage {
  const layer: Descriptor = opts.layer ?? { mediaType: MediaType.OCI_LAYER_GZIP, digest: sha256(EMPTY_LAYER), size: EMPTY_LAYER.length };
  if (!opts.layer) h.blobs.set(layer.digest, EMPTY_LAYER);
  const config = Buffer.from(JSON.stringify({
    architecture: HOST_PLATFORM.architecture,
    os: 'linux',
    config: { Cmd: ['/bin/true'] },
    rootfs: { type: 'layers', diff_ids: opts.diffIds ?? [sha256(EMPTY_TAR)] },
  }));
  h.blobs.set(sha256(config), config);
  const m: Manifest = {
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { mediaType: MediaType.OCI_CONFIG, digest: sha256(config), size: config.length },
    layers: [layer],
    ...(opts.annotations ? { annotations: opts.annotations } : {}),
  };
  const manifest = Buffer.from(JSON.stringify(m));
  h.manifests.set(sha256(manifest), manifest);
  return { manifest, config, descriptor: { mediaType: MediaType.OCI_MANIFEST, digest: sha256(manifest), size: manifest.length, platform: HOST_PLATFORM } };
}

/** Puts an index over `entries` into the registry's maps; returns its descriptor. */
export function serveIndex(h: HostileRegistry, entries: Descriptor[], annotations?: Record<string, string>): Descriptor {
  const b = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: entries, ...(annotations ? { annotations } : {}) }));
  h.manifests.set(sha256(b), b);
  return { mediaType: MediaType.OCI_INDEX, digest: sha256(b), size: b.length };
}
