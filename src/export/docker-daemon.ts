import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { request, type RequestOptions } from 'node:http';
import { KilnError } from '../errors/index.js';

/**
 * `--load`: hands a docker-archive tar to a Docker daemon through its
 * `/images/load` API, the daemon kiln itself never needs. Only unix sockets
 * and loopback TCP are used: a DOCKER_HOST elsewhere is refused rather than
 * sending the image over the network unencrypted.
 */
export interface DockerEndpoint {
  /** How the error names it: `unix:///var/run/docker.sock`, `tcp://127.0.0.1:2375`. */
  label: string;
  options: Pick<RequestOptions, 'socketPath' | 'host' | 'port'>;
}

export function dockerEndpoint(env: NodeJS.ProcessEnv = process.env): DockerEndpoint {
  const host = env['DOCKER_HOST'] || 'unix:///var/run/docker.sock';
  if (host.startsWith('unix://')) return { label: host, options: { socketPath: host.slice('unix://'.length) } };
  const m = /^(?:tcp|http):\/\/(127\.0\.0\.1|localhost|\[::1\]):(\d+)\/?$/.exec(host);
  if (m) return { label: host, options: { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) } };
  throw new KilnError('UNSUPPORTED', `--load: DOCKER_HOST=${host} is not supported (a unix:// socket or tcp://127.0.0.1:PORT)`);
}

const TIMEOUT_MS = 10_000;

function call(ep: DockerEndpoint, method: string, path: string, body?: { file: string; size: number }): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ ...ep.options, method, path, headers: body ? { 'Content-Type': 'application/x-tar', 'Content-Length': body.size } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      // a daemon's answer is a short JSON stream; more than this is not read
      res.on('data', (d: string) => {
        if (text.length < 1 << 20) text += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    // only the wait for an answer is bounded: the upload of a large image may take long
    if (!body) req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error(`no answer in ${TIMEOUT_MS / 1000}s`)));
    req.on('error', reject);
    if (body) createReadStream(body.file).on('error', reject).pipe(req);
    else req.end();
  });
}

/** Fails with one line unless a Docker daemon answers `/_ping`: checked before the build, not after it. */
export async function pingDocker(ep: DockerEndpoint): Promise<void> {
  const r = await call(ep, 'GET', '/_ping').catch((e: unknown) => {
    throw new KilnError('DOCKER_DAEMON', `--load: no Docker daemon answers at ${ep.label} (${(e as Error).message}); set DOCKER_HOST, or write the archive with -o type=docker,dest=FILE`);
  });
  if (r.status !== 200) throw new KilnError('DOCKER_DAEMON', `--load: ${ep.label} answered /_ping with HTTP ${r.status}; is it a Docker daemon?`);
}

/** POSTs the archive; the daemon's own error, when it reports one, is the message. */
export async function loadIntoDocker(ep: DockerEndpoint, archive: string): Promise<void> {
  const { size } = await stat(archive);
  const r = await call(ep, 'POST', '/images/load?quiet=1', { file: archive, size });
  const streamError = /"error(?:Detail)?"\s*:\s*"([^"]*)"/.exec(r.text)?.[1];
  if (r.status !== 200 || streamError) {
    throw new KilnError('DOCKER_DAEMON', `--load: the Docker daemon at ${ep.label} refused the image: ${streamError ?? `HTTP ${r.status} ${r.text.slice(0, 200)}`}`);
  }
}
