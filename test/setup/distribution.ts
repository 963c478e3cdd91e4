import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import { createServer, request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/**
 * One real Distribution registry (`/usr/bin/docker-registry`) on 127.0.0.1
 * with filesystem storage under `dir`. Its stderr goes to `dir/registry.log`
 * so a failed start can say why.
 */
export interface DistributionOptions {
  dir: string;
  /** YAML lines placed under `auth:`; none means anonymous. */
  auth?: string;
  /** Serve HTTPS with this certificate and key (PEM file paths). */
  tls?: { certificate: string; key: string };
}

export interface Distribution {
  /** host:port */
  addr: string;
  dir: string;
  log: string;
  stop(): Promise<void>;
}

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export async function startDistribution(opts: DistributionOptions): Promise<Distribution> {
  // a free port can be taken between probing and binding; try a few
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts, await freePort());
    } catch (e) {
      lastError = e;
    }
  }
  throw lastError;
}

async function startOnce(opts: DistributionOptions, port: number): Promise<Distribution> {
  const addr = `127.0.0.1:${port}`;
  const storage = join(opts.dir, 'storage');
  await mkdir(storage, { recursive: true });
  const config = [
    'version: 0.1',
    'log:',
    '  level: info',
    '  accesslog:',
    '    disabled: false',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${storage}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${addr}`,
    `  secret: ${randomBytes(16).toString('hex')}`,
    ...(opts.tls ? ['  tls:', `    certificate: ${opts.tls.certificate}`, `    key: ${opts.tls.key}`] : []),
    ...(opts.auth ? ['auth:', ...opts.auth.split('\n').map((l) => `  ${l}`)] : []),
    '',
  ].join('\n');
  const configPath = join(opts.dir, 'config.yml');
  await writeFile(configPath, config);
  const log = join(opts.dir, 'registry.log');
  const logFile = await open(log, 'a');
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', logFile.fd, logFile.fd] });
  await logFile.close();

  // if vitest dies without running the teardown, do not leave registries behind
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  let exited: string | undefined;
  const exitedPromise = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = `exited with ${code ?? signal}`;
      resolve();
    });
    child.once('error', (e) => {
      exited = `failed to start: ${e.message}`;
      resolve();
    });
  });

  const deadline = Date.now() + 20_000;
  while (!(await answers(addr, opts.tls !== undefined))) {
    if (exited !== undefined || Date.now() > deadline) {
      process.off('exit', killOnExit);
      child.kill('SIGKILL');
      const tail = (await readFile(log, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
      throw new Error(`docker-registry on ${addr} ${exited ?? 'did not answer /v2/ within 20s'}; log ${log}:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    addr,
    dir: opts.dir,
    log,
    stop: async () => {
      process.off('exit', killOnExit);
      if (exited !== undefined) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exitedPromise;
      clearTimeout(t);
    },
  };
}

function answers(addr: string, tls: boolean): Promise<boolean> {
  const [host, port] = addr.split(':');
  return new Promise((resolve) => {
    const send = tls ? httpsRequest : request;
    const req = send({ host, port: Number(port), path: '/v2/', method: 'GET', timeout: 1000, rejectUnauthorized: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 || res.statusCode === 401);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}
