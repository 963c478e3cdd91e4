// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- vitest's ProvidedContext is augmented in a .d.ts, which has no module to import
/// <reference path="./provided.d.ts" />
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import type { TestProject } from 'vitest/node';
import { startDistribution, type Distribution } from './distribution.js';
import type { RegistryInfo } from './registry-info.js';
import { startTokenServer, type TokenServer } from './token-server.js';

const USER = 'kiln';
const PASSWORD = 'secret';
const SERVICE = 'kiln-test-registry';
const ISSUER = 'kiln-test-issuer';

/**
 * Starts the services the integration tests need and stops them afterwards:
 * three real Distribution registries on 127.0.0.1 (anonymous, htpasswd Basic,
 * token auth) and the token server the third one trusts. Tests read the
 * addresses with `inject('registry')`.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const root = await mkdtemp(join(tmpdir(), 'kiln-registries-'));
  const started: Distribution[] = [];
  let tokenServer: TokenServer | undefined;

  const teardown = async (): Promise<void> => {
    await Promise.allSettled(started.map((d) => d.stop()));
    await tokenServer?.close();
    // KILN_KEEP_REGISTRY_LOGS=1 keeps the registries' logs and storage for a post-mortem
    if (process.env.KILN_KEEP_REGISTRY_LOGS) process.stderr.write(`registry logs kept in ${root}\n`);
    else await rm(root, { recursive: true, force: true });
  };

  try {
    const htpasswd = join(root, 'htpasswd');
    // cost 4: the registry checks the hash on every request, and the tests make many
    await writeFile(htpasswd, `${USER}:${bcrypt.hashSync(PASSWORD, 4)}\n`);

    const key = join(root, 'token.key');
    const cert = join(root, 'token.crt');
    await promisify(execFile)('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert,
      '-days', '2', '-subj', '/CN=kiln-test-token-issuer',
    ]);
    tokenServer = await startTokenServer({ keyPem: await readFile(key, 'utf8'), issuer: ISSUER, service: SERVICE, user: USER, password: PASSWORD });

    const [anon, basic, token] = await Promise.all([
      startDistribution({ dir: join(root, 'anon') }),
      startDistribution({ dir: join(root, 'basic'), auth: `htpasswd:\n  realm: kiln-basic\n  path: ${htpasswd}` }),
      startDistribution({
        dir: join(root, 'token'),
        auth: `token:\n  realm: ${tokenServer.url}/token\n  service: ${SERVICE}\n  issuer: ${ISSUER}\n  rootcertbundle: ${cert}`,
      }),
    ]);
    started.push(anon, basic, token);

    const info: RegistryInfo = {
      anon: anon.addr,
      basic: basic.addr,
      token: token.addr,
      tokenServer: tokenServer.url,
      user: USER,
      password: PASSWORD,
      tokenService: SERVICE,
      tokenIssuer: ISSUER,
    };
    project.provide('registry', info);
  } catch (e) {
    await teardown();
    throw e;
  }
  return teardown;
}
