import { KilnError, RegistryError } from '../errors/index.js';
import { isDigest, sha256, type Digest } from '../image/digest.js';
import { isIndexMediaType, isManifestMediaType, isSchema1MediaType, MAX_MANIFEST_BYTES, MediaType } from '../image/media-types.js';
import type { Descriptor } from '../image/types.js';
import { repositoryScope } from './auth.js';
import type { CredentialSource } from './credentials.js';
import { dockerCredentialSource } from './credentials.js';
import type { RegistryEventListener } from './events.js';
import { ERROR_BODY_LIMIT, RateWatch, readBody } from './body.js';
import { RegistryHttp, redactUrl, type Endpoint, type RequestBody, type Response } from './http.js';
import { isRepository, isTag, type Reference } from './reference.js';
import type { RetryPolicy } from './retry.js';

export interface RegistryClientOptions {
  /** `host[:port]` allowed to use HTTP or unverified TLS (loopback always may). */
  insecureRegistries?: string[];
  /** Mirror URLs for docker.io, tried in order before Docker Hub itself. */
  mirrors?: string[];
  /** Where credentials come from; default: Docker/Podman config files and helpers. */
  credentials?: CredentialSource;
  /** Parallel blob downloads (default 4). */
  concurrency?: number;
  /** Parallel blob uploads (default 3). */
  uploadConcurrency?: number;
  /**
   * Blobs larger than this are uploaded in PATCH chunks of this size. Default: blobs up to 64 MiB in
   * one PUT, larger ones in one PATCH that streams the whole blob (as `docker push` sends every blob);
   * once such a request fails on a host, 64 MiB chunks there, from where the registry got to.
   */
  chunkSize?: number;
  /** Try the single-POST monolithic upload (blob in the POST body) for blobs up to this size; 0 = never (default). */
  singlePostMaxSize?: number;
  /** Progress and warnings. */
  onEvent?: RegistryEventListener;
  /** Request traces (no headers, no query strings, never credentials). */
  debug?: (line: string) => void;
  retry?: Partial<RetryPolicy>;
  /** Directories with `<host>/ca.crt` etc. (default /etc/docker/certs.d, /etc/containers/certs.d). */
  certsDirs?: string[];
  http2?: boolean;
  userAgent?: string;
  /** Cancels every request of this client. */
  signal?: AbortSignal;
}

/** All pages of one tag list together (a page is bounded like a manifest). */
const MAX_TAG_LIST_BYTES = 64 * 1024 * 1024;

/** Every manifest kind kiln understands, best first; schema 1 is listed only to refuse it clearly. */
export const MANIFEST_ACCEPT = [
  MediaType.OCI_INDEX,
  MediaType.OCI_MANIFEST,
  MediaType.DOCKER_MANIFEST_LIST,
  MediaType.DOCKER_MANIFEST,
  `${MediaType.DOCKER_SCHEMA1_SIGNED};q=0.1`,
  `${MediaType.DOCKER_SCHEMA1};q=0.1`,
].join(', ');

/** A manifest or index as the registry sent it: exact bytes, their digest and media type. */
export interface FetchedManifest {
  bytes: Buffer;
  digest: Digest;
  mediaType: string;
  /** Where it came from (a mirror or the registry). */
  endpoint: Endpoint;
}

export type BlobPushOutcome = 'exists' | 'mounted' | 'uploaded';

/**
 * A source of blob bytes that can be re-opened at an offset, so an upload can
 * resume where the registry says it stopped. `end` is exclusive.
 */
export type BlobSource = (start: number, end: number) => AsyncIterable<Uint8Array>;

export interface BlobPushOptions {
  /** Repositories of the same registry known to hold the blob, tried with a cross-repository mount. */
  mountFrom?: string[];
  onProgress?: (bytesDone: number, phase: 'uploading' | 'retrying' | 'resumed') => void;
}

/**
 * Without a chunk size, blobs up to this size go up in one PUT, and larger ones through an upload
 * session in one PATCH, which a dropped connection can resume. Eight 64 MiB PATCHes of a 500 MB
 * blob to Distribution took 1.10× the wall time of one request with all of it (1.17× with a core
 * kept busy; medians of three alternated `kiln push` runs each, 2026-12-07), and more of kiln's
 * CPU (user 1.26–1.39 s against 0.90–1.21 s): each request is another round trip in which the
 * registry reopens the upload and restores its hash state, and another body stream here.
 */
const MONOLITHIC_MAX = 64 * 1024 * 1024;

const COALESCE = 1024 * 1024;

/**
 * The registry client: manifests and blobs of OCI distribution registries,
 * over one keep-alive connection pool per host. Stateless apart from
 * connections and cached tokens; `close()` releases them.
 */
export class RegistryClient {
  readonly http: RegistryHttp;
  readonly opts: RegistryClientOptions;
  /** OCI-Chunk-Min-Length per registry host, learnt from any upload answer. */
  private readonly minChunk = new Map<string, number>();
  /**
   * Hosts where a whole-blob PATCH failed: their later PATCHes (the rest of that blob, and every
   * other blob) go in MONOLITHIC_MAX chunks, as before the whole-blob default — a proxy that limits
   * request bodies (413) or drops long requests then still takes the push, and a broken connection
   * costs at most a chunk.
   */
  private readonly wholeBlobFailed = new Set<string>();

  constructor(opts: RegistryClientOptions = {}) {
    this.opts = opts;
    this.http = new RegistryHttp({
      insecureRegistries: opts.insecureRegistries ?? [],
      mirrors: opts.mirrors ?? [],
      credentials: opts.credentials ?? dockerCredentialSource(),
      ...(opts.certsDirs ? { certsDirs: opts.certsDirs } : {}),
      ...(opts.retry ? { retry: opts.retry } : {}),
      ...(opts.debug ? { debug: opts.debug } : {}),
      ...(opts.userAgent ? { userAgent: opts.userAgent } : {}),
      http2: opts.http2 ?? false,
      ...(opts.signal ? { signal: opts.signal } : {}),
      connectionsPerHost: Math.max(opts.concurrency ?? 4, opts.uploadConcurrency ?? 3) + 4,
      onRetry: (what, attempt, reason) => opts.onEvent?.({ type: 'warning', message: `${what}: retrying after ${reason} (attempt ${attempt + 1})` }),
    });
  }

  /** The chunk size given, if any: without one, one PUT up to 64 MiB and one PATCH with the rest beyond. */
  get chunkSize(): number | undefined {
    return this.opts.chunkSize;
  }

  /** The largest blob uploaded in one PUT. */
  private get monolithicMax(): number {
    return this.opts.chunkSize ?? MONOLITHIC_MAX;
  }

  /** The registry's own endpoint for `ref` (never a mirror). */
  endpoint(ref: Reference): Endpoint {
    return this.http.endpointsFor(ref, false)[0]!;
  }

  /** Checks that the registry answers and accepts our credentials (what `kiln login` verifies). */
  async checkLogin(registry: string): Promise<void> {
    const ep: Endpoint = registry === 'docker.io'
      ? { host: 'registry-1.docker.io', credentialKey: registry, mirror: false }
      : { host: registry, credentialKey: registry, mirror: false };
    const res = await this.http.send(ep, { method: 'GET', url: '/v2/', scopes: [], ok: [200], what: `login to ${registry}` });
    await res.body.dump();
  }

  /**
   * Fetches a manifest by tag or digest with the full Accept list, trying
   * mirrors first for docker.io. Verifies the digest when the reference pins
   * one, and the registry's Docker-Content-Digest when it sends one.
   */
  async getManifest(ref: Reference, opts: { forPull?: boolean; accept?: string } = {}): Promise<FetchedManifest> {
    const endpoints = this.http.endpointsFor(ref, opts.forPull ?? true);
    let lastError: unknown;
    for (const ep of endpoints) {
      try {
        return await this.getManifestFrom(ep, ref, ref.identifier, opts.accept);
      } catch (e) {
        lastError = e;
        if (!ep.mirror) break;
        this.opts.onEvent?.({ type: 'warning', message: `mirror ${ep.host} failed for ${ref.familiar()}, trying the next source: ${(e as Error).message}` });
      }
    }
    throw lastError;
  }

  /**
   * Fetches one manifest from one endpoint. `identifier` is a digest (whose
   * bytes are then verified), or the reference's own tag: a child named by a
   * registry document is always fetched by digest, so it cannot name a tag
   * and skip the check.
   */
  async getManifestFrom(ep: Endpoint, ref: Reference, identifier: string, accept?: string): Promise<FetchedManifest> {
    const what = `manifest ${ref.name}:${identifier}`;
    const res = await this.http.send(ep, {
      method: 'GET',
      url: manifestPath(ref, identifier, ref.digest === undefined && identifier === ref.identifier),
      headers: { accept: accept ?? MANIFEST_ACCEPT },
      scopes: [repositoryScope(ref.repository, 'pull')],
      ok: [200],
      what,
    });
    const bytes = await readBody(res.body, { limit: MAX_MANIFEST_BYTES, what, contentLength: res.headers['content-length'] });
    const digest = sha256(bytes);
    if (isDigest(identifier) && identifier !== digest) {
      throw new KilnError('DIGEST_MISMATCH', `${what}: registry sent bytes with digest ${digest}, expected ${identifier}`);
    }
    const headerDigest = header(res, 'docker-content-digest');
    if (headerDigest && headerDigest.startsWith('sha256:') && headerDigest !== digest) {
      throw new KilnError('DIGEST_MISMATCH', `${what}: Docker-Content-Digest says ${headerDigest} but the body has digest ${digest}`);
    }
    const mediaType = manifestMediaType(bytes, header(res, 'content-type'), what);
    return { bytes, digest, mediaType, endpoint: ep };
  }

  /** The descriptor of a manifest without its body; undefined when absent. */
  async headManifest(ref: Reference): Promise<Descriptor | undefined> {
    const ep = this.endpoint(ref);
    const res = await this.http.send(ep, {
      method: 'HEAD',
      url: manifestPath(ref, ref.identifier, ref.digest === undefined),
      headers: { accept: MANIFEST_ACCEPT },
      scopes: [repositoryScope(ref.repository, 'pull')],
      ok: [200],
      pass: [404],
      what: `manifest ${ref.toString()}`,
    });
    await res.body.dump();
    if (res.status === 404) return undefined;
    const digest = header(res, 'docker-content-digest');
    const size = Number(header(res, 'content-length'));
    if (!digest || !isDigest(digest)) {
      // some registries omit the digest on HEAD; fetch to learn it
      const m = await this.getManifestFrom(ep, ref, ref.identifier);
      return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length };
    }
    return { mediaType: (header(res, 'content-type') ?? '').split(';')[0]!.trim(), digest, size };
  }

  /**
   * PUTs a manifest under a tag or digest with its exact media type and
   * checks the Docker-Content-Digest the registry answers with. Returns
   * the digest and whether the registry acknowledged a `subject`.
   */
  async putManifest(ref: Reference, identifier: string, bytes: Buffer, mediaType: string): Promise<{ digest: Digest; subjectAcknowledged: boolean }> {
    const digest = sha256(bytes);
    const what = `manifest ${ref.name}:${identifier}`;
    const res = await this.http.send(this.endpoint(ref), {
      method: 'PUT',
      url: manifestPath(ref, identifier, true),
      headers: { 'content-type': mediaType, 'content-length': String(bytes.length) },
      body: () => bytes,
      scopes: [repositoryScope(ref.repository, 'pull,push')],
      ok: [200, 201, 202],
      what,
    });
    await res.body.dump();
    // as containerd's pusher: an answer without the header is accepted, one naming anything but the
    // digest of the bytes sent (another algorithm, or not a digest at all) is not a stored manifest kiln can vouch for
    const got = header(res, 'docker-content-digest');
    if (got !== undefined && got !== digest) {
      throw new KilnError('DIGEST_MISMATCH', `${what}: registry answered Docker-Content-Digest ${JSON.stringify(got)}, but kiln sent ${digest}`);
    }
    return { digest, subjectAcknowledged: header(res, 'oci-subject') !== undefined };
  }

  /**
   * Every tag of a repository, following `Link: <…>; rel="next"` pages
   * (`pageSize` asks for `n` per page). A repository without tags may answer
   * 404; that is an empty list.
   */
  async listTags(ref: Reference, opts: { pageSize?: number } = {}): Promise<string[]> {
    const ep = this.endpoint(ref);
    const tags: string[] = [];
    let bytes = 0;
    let url: string | undefined = `/v2/${repositoryPath(ref)}/tags/list${opts.pageSize ? `?n=${opts.pageSize}` : ''}`;
    for (let page = 0; url && page < 10_000; page++) {
      const res: Response = await this.http.send(ep, {
        method: 'GET',
        url,
        scopes: [repositoryScope(ref.repository, 'pull')],
        ok: [200],
        pass: [404],
        what: `tags of ${ref.name}`,
      });
      if (res.status === 404) {
        await res.body.dump();
        break;
      }
      const text = await readBody(res.body, { limit: MAX_MANIFEST_BYTES, what: `tags of ${ref.name}`, contentLength: res.headers['content-length'] });
      bytes += text.length;
      // each page is bounded, and so are all of them: a registry paging without end cannot fill memory
      if (bytes > MAX_TAG_LIST_BYTES) throw new KilnError('REGISTRY', `tags of ${ref.name}: the tag list passes ${MAX_TAG_LIST_BYTES / (1024 * 1024)} MiB, kiln's limit`);
      const body = parseTags(text, ref);
      if (Array.isArray(body.tags)) tags.push(...body.tags.filter((t): t is string => typeof t === 'string'));
      const next = nextLink(header(res, 'link'));
      url = next ? new URL(next, res.url).toString() : undefined;
    }
    return tags;
  }

  /** Size of a blob in the repository, or undefined when absent. */
  async blobSize(ref: Reference, digest: Digest, ep: Endpoint = this.endpoint(ref), actions: 'pull' | 'pull,push' = 'pull'): Promise<number | undefined> {
    const res = await this.http.send(ep, {
      method: 'HEAD',
      url: blobPath(ref, digest),
      // a push asks with the push scope so one token serves HEAD and upload
      scopes: [repositoryScope(ref.repository, actions)],
      ok: [200],
      pass: [404],
      what: `blob ${digest} in ${ref.name}`,
    });
    await res.body.dump();
    if (res.status === 404) return undefined;
    const got = header(res, 'docker-content-digest');
    // any other answer, a sha512 one or a malformed one included, is not about this blob
    if (got && got !== digest) {
      throw new KilnError('DIGEST_MISMATCH', `blob ${digest} in ${ref.name}: the registry answered for ${got}`);
    }
    const len = header(res, 'content-length');
    return len === undefined ? -1 : Number(len);
  }

  /**
   * Streams a blob, resuming with `Range` after a dropped connection or a
   * truncated body (bounded by the retry policy). If the registry ignores
   * Range (200 instead of 206), the bytes already delivered are skipped.
   * Yields exactly the blob's bytes; the consumer verifies the digest.
   */
  async *blob(ref: Reference, desc: Pick<Descriptor, 'digest' | 'size'>, opts: {
    endpoint?: Endpoint;
    start?: number;
    end?: number;
    onProgress?: (bytesDone: number, phase: 'downloading' | 'resumed') => void;
  } = {}): AsyncGenerator<Uint8Array> {
    const ep = opts.endpoint ?? this.endpoint(ref);
    const what = `blob ${desc.digest} of ${ref.name}`;
    const start = opts.start ?? 0;
    const end = opts.end ?? desc.size;
    let offset = start;
    let failures = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    for (;;) {
      const ranged = offset > 0 || end < desc.size;
      const res = await this.http.send(ep, {
        method: 'GET',
        url: blobPath(ref, desc.digest),
        headers: ranged ? { range: `bytes=${offset}-${end - 1}` } : {},
        scopes: [repositoryScope(ref.repository, 'pull')],
        ok: ranged ? [200, 206] : [200],
        pass: ranged ? [416] : [],
        what,
      });
      if (res.status === 416) {
        await res.body.dump();
        throw new RangeNotSatisfiable(what, offset);
      }
      let skip = 0;
      if (res.status === 206) {
        const cr = header(res, 'content-range');
        const m = cr ? /^bytes (\d+)-/.exec(cr) : null;
        if (m && Number(m[1]) !== offset) {
          await res.body.dump();
          throw new KilnError('REGISTRY', `${what}: asked for bytes from ${offset}, registry sent from ${m[1]}`);
        }
        if (offset > start) opts.onProgress?.(offset - start, 'resumed');
      } else if (ranged) {
        skip = offset;
      }
      let received = 0;
      const watch = new RateWatch(res.body, () => received, what);
      try {
        for await (const chunk of res.body as AsyncIterable<Buffer>) {
          received += chunk.length;
          let c = chunk;
          if (skip > 0) {
            if (c.length <= skip) {
              skip -= c.length;
              continue;
            }
            c = c.subarray(skip);
            skip = 0;
          }
          let last = false;
          const room = end - offset - pendingBytes;
          if (c.length > room) {
            // a registry that ignored Range for a partial read (copy chunks): keep what was asked for
            if (res.status !== 200 || end >= desc.size) {
              throw new KilnError('SIZE_MISMATCH', `${what}: registry sent more than the ${desc.size} bytes the manifest says`);
            }
            c = c.subarray(0, room);
            last = true;
          }
          // socket reads are small; hand the consumer (a file write each) about 1 MiB at a time
          pending.push(c);
          pendingBytes += c.length;
          if (last) break;
          if (pendingBytes >= COALESCE) {
            const out = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingBytes);
            pending = [];
            offset += pendingBytes;
            pendingBytes = 0;
            // the consumer's time with the chunk is not the registry's
            watch.pause();
            yield out;
            watch.resume();
            opts.onProgress?.(offset - start, 'downloading');
          }
        }
        watch.stop();
        if (pendingBytes > 0) {
          const out = Buffer.concat(pending, pendingBytes);
          pending = [];
          offset += pendingBytes;
          pendingBytes = 0;
          yield out;
          opts.onProgress?.(offset - start, 'downloading');
        }
        if (offset < end) throw Object.assign(new Error(`body ended after ${offset} of ${end} bytes`), { code: 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' });
        return;
      } catch (e) {
        res.body.destroy();
        // bytes received before the fault still count: flush them so the resume starts after them
        if (pendingBytes > 0 && !(e instanceof KilnError)) {
          const out = Buffer.concat(pending, pendingBytes);
          pending = [];
          offset += pendingBytes;
          pendingBytes = 0;
          yield out;
        }
        pending = [];
        pendingBytes = 0;
        failures++;
        if (e instanceof KilnError || failures >= this.http.retry.maxAttempts) {
          if (e instanceof KilnError) throw e;
          throw new KilnError('REGISTRY', `${what}: download failed after ${failures} attempts at byte ${offset} of ${end}: ${(e as Error).message}`, { cause: e });
        }
        this.opts.onEvent?.({ type: 'warning', message: `${what}: connection lost at byte ${offset}, resuming` });
      } finally {
        watch.stop();
        // the consumer may stop early (a size or digest failure): release the connection
        if (!res.body.readableEnded) res.body.destroy();
      }
    }
  }

  /**
   * Makes a blob exist in `ref`'s repository: HEAD; else a cross-repository
   * mount from each `mountFrom` candidate; else an upload — monolithic
   * (POST + PUT) up to `chunkSize` (64 MiB without one), PATCHes beyond (one for the
   * whole blob without a chunk size), resumed from the
   * offset the registry reports after a failure or a 416.
   */
  async pushBlob(ref: Reference, desc: Pick<Descriptor, 'digest' | 'size'>, source: BlobSource, opts: BlobPushOptions = {}): Promise<BlobPushOutcome> {
    const ep = this.endpoint(ref);
    const have = await this.blobSize(ref, desc.digest, ep, 'pull,push');
    // another length under the same digest is a truncated or damaged blob: upload ours rather than trust it
    // (a registry that omits Content-Length on HEAD, -1, is taken at its word)
    if (have !== undefined && (have === desc.size || have === -1)) return 'exists';
    const what = `upload of blob ${desc.digest} to ${ref.name}`;

    // the open upload session, so a failed upload can be cancelled rather than left to expire
    const session: { url?: string | undefined } = {};
    for (const from of opts.mountFrom ?? []) {
      if (from === ref.repository) continue;
      const res = await this.http.send(ep, {
        method: 'POST',
        url: `/v2/${repositoryPath(ref)}/blobs/uploads/?mount=${encodeURIComponent(desc.digest)}&from=${encodeURIComponent(from)}`,
        headers: { 'content-length': '0' },
        scopes: [repositoryScope(ref.repository, 'pull,push'), repositoryScope(from, 'pull')],
        ok: [201, 202],
        what: `mount of blob ${desc.digest} from ${from} into ${ref.name}`,
      });
      await res.body.dump();
      if (res.status === 201) return 'mounted';
      // 202: not mounted, but the answer opened an upload session we can use
      this.noteChunkMin(ep, res);
      session.url = location(res);
      break;
    }

    let attempts = 0;
    for (;;) {
      try {
        if (desc.size <= this.monolithicMax) {
          await this.uploadMonolithic(ep, ref, desc, source, session, what, opts);
        } else {
          await this.uploadChunked(ep, ref, desc, source, session, what, opts);
        }
        return 'uploaded';
      } catch (e) {
        attempts++;
        // a whole-session failure (session expired, body refused mid-way): start over a bounded number of times
        if (!(e instanceof UploadRestart) || attempts >= this.http.retry.maxAttempts) {
          if (session.url) await this.cancelUpload(ep, ref, session.url);
          if (e instanceof UploadRestart) throw new KilnError('REGISTRY', `${what}: ${e.message}`);
          throw e;
        }
        opts.onProgress?.(0, 'retrying');
        session.url = undefined;
      }
    }
  }

  private async startUpload(ep: Endpoint, ref: Reference, what: string): Promise<string> {
    const res = await this.http.send(ep, {
      method: 'POST',
      url: `/v2/${repositoryPath(ref)}/blobs/uploads/`,
      headers: { 'content-length': '0' },
      scopes: [repositoryScope(ref.repository, 'pull,push')],
      ok: [202],
      what,
    });
    await res.body.dump();
    this.noteChunkMin(ep, res);
    return location(res);
  }

  private noteChunkMin(ep: Endpoint, res: Response): void {
    const min = Number(header(res, 'oci-chunk-min-length'));
    if (min > 0) this.minChunk.set(ep.host, min);
  }

  /** `DELETE <upload URL>`, best effort: the registry would expire it anyway. */
  private async cancelUpload(ep: Endpoint, ref: Reference, url: string): Promise<void> {
    try {
      const res = await this.http.send(ep, {
        method: 'DELETE',
        url,
        scopes: [repositoryScope(ref.repository, 'pull,push')],
        ok: [200, 202, 204],
        pass: [400, 404, 405],
        retry: false,
        what: `cancel upload to ${ref.name}`,
      });
      await res.body.dump();
    } catch {
      // the upload already failed; its error is the one worth reporting
    }
  }

  private async uploadMonolithic(ep: Endpoint, ref: Reference, desc: Pick<Descriptor, 'digest' | 'size'>, source: BlobSource, session: { url?: string | undefined }, what: string, opts: BlobPushOptions): Promise<void> {
    const counted = (): AsyncIterable<Uint8Array> => countBytes(source(0, desc.size), 0, (n) => opts.onProgress?.(n, 'uploading'));
    const singleMax = this.opts.singlePostMaxSize ?? 0;
    if (!session.url && desc.size <= singleMax) {
      // single POST: 201 means stored; 202 means the body was ignored and a session opened
      const res = await this.http.send(ep, {
        method: 'POST',
        url: `/v2/${repositoryPath(ref)}/blobs/uploads/?digest=${encodeURIComponent(desc.digest)}`,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
        body: counted,
        scopes: [repositoryScope(ref.repository, 'pull,push')],
        ok: [201, 202],
        what,
      });
      await res.body.dump();
      if (res.status === 201) return;
      session.url = location(res);
    }
    session.url ??= await this.startUpload(ep, ref, what);
    const res = await this.sendUpload(ep, {
      method: 'PUT',
      url: withDigest(session.url, desc.digest),
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(desc.size) },
      body: counted,
      scopes: [repositoryScope(ref.repository, 'pull,push')],
      ok: [201, 204],
      what,
    });
    await res.body.dump();
  }

  private async uploadChunked(ep: Endpoint, ref: Reference, desc: Pick<Descriptor, 'digest' | 'size'>, source: BlobSource, session: { url?: string | undefined }, what: string, opts: BlobPushOptions): Promise<void> {
    const scopes = [repositoryScope(ref.repository, 'pull,push')];
    let loc = session.url ?? (await this.startUpload(ep, ref, what));
    session.url = loc;
    let offset = 0;
    let failures = 0;
    while (offset < desc.size) {
      const cap = this.opts.chunkSize ?? (this.wholeBlobFailed.has(ep.host) ? MONOLITHIC_MAX : Infinity);
      const len = Math.min(Math.max(cap, this.minChunk.get(ep.host) ?? 0), desc.size - offset);
      const start = offset;
      try {
        const res = await this.http.send(ep, {
          method: 'PATCH',
          url: loc,
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(len),
            // the distribution spec's form: inclusive, no "bytes=" prefix
            'content-range': `${start}-${start + len - 1}`,
          },
          body: () => countBytes(source(start, start + len), start, (n) => opts.onProgress?.(n, 'uploading')),
          scopes,
          ok: [202, 204],
          pass: [416],
          retry: false,
          what,
        });
        await res.body.dump();
        if (res.status === 416) throw new RangeRefused();
        loc = location(res, loc);
        session.url = loc;
        this.noteChunkMin(ep, res);
        const reported = rangeEnd(res);
        offset = reported === undefined || reported === 0 ? start + len : reported;
      } catch (e) {
        if (e instanceof KilnError && e.code !== 'REGISTRY') throw e;
        if (cap === Infinity) {
          // the whole blob in one request did not go through: chunks from here on, and a 413 (the
          // body was too big for something on the way) is no failure of the upload itself
          this.wholeBlobFailed.add(ep.host);
          this.opts.onEvent?.({ type: 'warning', message: `${what}: one request with the whole blob failed (${(e as Error).message}); sending it in ${MONOLITHIC_MAX / 1024 / 1024} MiB chunks` });
          if (e instanceof RegistryError && e.status === 413) failures--;
        }
        failures++;
        if (failures >= this.http.retry.maxAttempts) throw new KilnError('REGISTRY', `${what}: chunk at ${start} failed ${failures} times: ${(e as Error).message}`, { cause: e });
        // ask the registry how much it has and carry on from there
        const status = await this.uploadStatus(ep, loc, scopes, what);
        if (!status) throw new UploadRestart('upload session lost');
        loc = status.location;
        session.url = loc;
        offset = status.offset;
        this.opts.onEvent?.({ type: 'warning', message: `${what}: resuming at byte ${offset}` });
        opts.onProgress?.(offset, 'resumed');
      }
    }
    const res = await this.sendUpload(ep, {
      method: 'PUT',
      url: withDigest(loc, desc.digest),
      headers: { 'content-length': '0' },
      scopes,
      ok: [201, 204],
      what,
    });
    await res.body.dump();
  }

  /** `GET <upload URL>`: 204 with `Range: 0-<last>`; undefined when the session is gone. */
  private async uploadStatus(ep: Endpoint, loc: string, scopes: string[], what: string): Promise<{ location: string; offset: number } | undefined> {
    const res = await this.http.send(ep, { method: 'GET', url: loc, scopes, ok: [204, 200], pass: [404], what });
    await res.body.dump();
    if (res.status === 404) return undefined;
    return { location: location(res, loc), offset: rangeEnd(res) ?? 0 };
  }

  /** The finalising PUT: a 400/404 after a fault means the session is unusable, so start over. */
  private async sendUpload(ep: Endpoint, o: Parameters<RegistryHttp['send']>[1]): Promise<Response> {
    try {
      return await this.http.send(ep, { ...o, pass: [...(o.pass ?? []), 400, 404, 416] }).then(async (res) => {
        if (res.status === 400 || res.status === 404 || res.status === 416) {
          const text = await readBody(res.body, { limit: ERROR_BODY_LIMIT, what: o.what, truncate: true }).then((b) => b.toString('utf8')).catch(() => '');
          if (/DIGEST_INVALID/.test(text)) {
            throw new KilnError('DIGEST_MISMATCH', `${o.what}: the registry computed a different digest for the uploaded bytes`);
          }
          throw new UploadRestart(`registry answered ${res.status} to ${o.method} ${redactUrl(o.url)}`);
        }
        return res;
      });
    } catch (e) {
      if (e instanceof KilnError && e.code === 'REGISTRY' && e.cause !== undefined) throw new UploadRestart(e.message);
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.http.close();
  }
}

class UploadRestart extends Error {}

/** The registry answered 416 to a ranged blob read: the bytes kept locally do not fit what it has. */
export class RangeNotSatisfiable extends KilnError {
  readonly offset: number;
  constructor(what: string, offset: number) {
    super('REGISTRY', `${what}: registry refused the range starting at byte ${offset} (HTTP 416)`);
    this.offset = offset;
  }
}
class RangeRefused extends Error {
  constructor() {
    super('registry refused the chunk range (416)');
  }
}

/*
 * Every registry URL path this client builds goes through the three functions
 * below: a repository as the reference grammar spells it, and a digest or tag
 * as the last segment. A "digest" out of a hostile document such as
 * `sha256:../../x/manifests/latest` would otherwise steer the request to
 * another path on the registry (or, in a copy, on the destination).
 */
function repositoryPath(ref: Reference): string {
  if (!isRepository(ref.repository)) throw new KilnError('INVALID_REFERENCE', `invalid repository name ${JSON.stringify(ref.repository)}`);
  return ref.repository;
}

/** `tagAllowed`: the identifier may be a tag (the reference's own, or one kiln pushes to); otherwise only a digest. */
function manifestPath(ref: Reference, identifier: string, tagAllowed: boolean): string {
  if (!isDigest(identifier) && !(tagAllowed && isTag(identifier))) {
    throw new KilnError('REGISTRY', `${ref.name}: manifest ${JSON.stringify(identifier)} is not a sha256:<64 lowercase hex> digest${tagAllowed ? ' or a tag' : ''}; kiln does not request it`);
  }
  return `/v2/${repositoryPath(ref)}/manifests/${identifier}`;
}

function blobPath(ref: Reference, digest: string): string {
  if (!isDigest(digest)) throw new KilnError('REGISTRY', `${ref.name}: blob ${JSON.stringify(digest)} is not a sha256:<64 lowercase hex> digest; kiln does not request it`);
  return `/v2/${repositoryPath(ref)}/blobs/${digest}`;
}

function header(res: Response, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The Location of a response, resolved against the request URL. */
function location(res: Response, fallback?: string): string {
  const loc = header(res, 'location');
  if (!loc) {
    if (fallback) return fallback;
    throw new KilnError('REGISTRY', `registry answered ${res.status} without a Location header (${redactUrl(res.url)})`);
  }
  return new URL(loc, res.url).toString();
}

function parseTags(bytes: Buffer, ref: Reference): { tags?: unknown } {
  try {
    const v = JSON.parse(bytes.toString('utf8')) as unknown;
    return v && typeof v === 'object' ? v : {};
  } catch {
    throw new KilnError('REGISTRY', `tags of ${ref.name}: the registry sent a tag list that is not JSON`);
  }
}

/** The target of `Link: <url>; rel="next"`. */
function nextLink(link: string | undefined): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part.trim());
    if (m) return m[1];
  }
  return undefined;
}

/**
 * `Range: 0-<last>` → bytes received (last + 1). Distribution answers `0-0`
 * for an empty session as well as for one byte; read it as empty (resending
 * one byte is harmless, skipping one is not).
 */
function rangeEnd(res: Response): number | undefined {
  const r = header(res, 'range');
  const m = r ? /^(?:bytes=)?(\d+)-(\d+)$/.exec(r.trim()) : null;
  if (!m) return undefined;
  const last = Number(m[2]);
  return last === 0 ? 0 : last + 1;
}

/** Adds `digest=` to an upload URL, keeping the query parameters the registry put there. */
function withDigest(loc: string, digest: Digest): string {
  const u = new URL(loc);
  u.searchParams.set('digest', digest);
  return u.toString();
}

async function* countBytes(src: AsyncIterable<Uint8Array>, base: number, report: (n: number) => void): AsyncGenerator<Uint8Array> {
  let n = base;
  for await (const c of src) {
    n += c.length;
    yield c;
    report(n);
  }
}

/** The media type of a fetched manifest: Content-Type, else the document's own field; schema 1 and unknown kinds are refused. */
function manifestMediaType(bytes: Buffer, contentType: string | undefined, what: string): string {
  let doc: { mediaType?: unknown; schemaVersion?: unknown; manifests?: unknown; config?: unknown };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    throw new KilnError('REGISTRY', `${what}: the registry sent a manifest that is not JSON`);
  }
  const ct = contentType?.split(';')[0]?.trim();
  const declared = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  const mt = declared ?? (ct && ct !== 'application/json' && ct !== 'text/plain' ? ct : undefined)
    ?? (doc.manifests ? MediaType.OCI_INDEX : doc.config ? MediaType.OCI_MANIFEST : undefined);
  if (doc.schemaVersion === 1 || isSchema1MediaType(mt) || isSchema1MediaType(ct)) {
    throw new KilnError('UNSUPPORTED', `${what}: Docker schema 1 manifests are not supported (deprecated since 2017); push the image again with a current client`);
  }
  if (!mt || !(isIndexMediaType(mt) || isManifestMediaType(mt))) {
    throw new KilnError('UNSUPPORTED', `${what}: unknown manifest media type "${mt ?? ct ?? 'none'}"`);
  }
  return mt;
}

export type { RequestBody };
