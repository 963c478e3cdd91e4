import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseReference, pull, push } from '../../src/registry/index.js';
import { startDistribution, type Distribution } from '../setup/distribution.js';
import { makeRandomImage, tempStore, uniqueRepo } from './helpers/images.js';

const run = promisify(execFile);

/**
 * A registry over HTTPS with a certificate from a private CA: refused by
 * default, trusted through certs.d/<host:port>/ca.crt, or accepted unverified
 * as an insecure registry.
 */
describe('HTTPS registries: custom CA from certs.d, insecure registries', () => {
  let dir: string;
  let registry: Distribution;
  let s: Awaited<ReturnType<typeof tempStore>>;
  let ref: string;
  let certsDir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-tls-'));
    const ossl = (...a: string[]) => run('openssl', a, { cwd: dir });
    await ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=kiln test CA');
    await ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    await writeFile(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    await ossl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext');
    registry = await startDistribution({ dir: join(dir, 'registry'), tls: { certificate: join(dir, 'server.crt'), key: join(dir, 'server.key') } });
    certsDir = join(dir, 'certs.d');
    await mkdir(join(certsDir, registry.addr), { recursive: true });
    await run('cp', [join(dir, 'ca.crt'), join(certsDir, registry.addr, 'ca.crt')]);
    s = await tempStore();
    ref = `${registry.addr}/${uniqueRepo()}:1`;
    await makeRandomImage(s.store, parseReference(ref).toString(), [1000]);
  });
  afterAll(async () => {
    await s?.dispose();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses an unknown CA (HTTPS first, and plain HTTP is not spoken there either)', async () => {
    const e = await push(s.store, ref, undefined, { certsDirs: [join(dir, 'nothing')], retry: { maxAttempts: 1 } }).catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'REGISTRY' });
    expect((e as Error).message).toMatch(/cannot reach registry .* over HTTPS or HTTP: .*(certificate|self.signed|issuer)/i);
  });

  it('trusts the CA in certs.d/<host:port>/ca.crt', async () => {
    const r = await push(s.store, ref, undefined, { certsDirs: [certsDir] });
    const d = await tempStore();
    try {
      expect((await pull(d.store, ref, { certsDirs: [certsDir] })).manifestDigest).toBe(r.digest);
    } finally {
      await d.dispose();
    }
  });

  it('accepts the certificate unverified for an insecure registry', async () => {
    const d = await tempStore();
    try {
      const r = await pull(d.store, ref, { certsDirs: [], insecureRegistries: [registry.addr] });
      expect(r.manifestDigest).toMatch(/^sha256:/);
    } finally {
      await d.dispose();
    }
  });
});

describe('certs.d lookup by host name', () => {
  it('a host named "." or ".." (a redirect to https://../) reads no file of certs.d or its parent', async () => {
    const { loadTlsFiles } = await import('../../src/registry/transport.js');
    const base = await mkdtemp(join(tmpdir(), 'kiln-certs-'));
    try {
      const certs = join(base, 'certs.d');
      await mkdir(join(certs, 'reg.example:5000'), { recursive: true });
      // files a hostile host name would reach: in certs.d itself and in its parent
      for (const d of [base, certs]) {
        await writeFile(join(d, 'x.crt'), 'not for you');
        await writeFile(join(d, 'client.cert'), 'not for you');
        await writeFile(join(d, 'client.key'), 'not for you');
      }
      await writeFile(join(certs, 'reg.example:5000', 'ca.crt'), 'CA');
      expect(await loadTlsFiles('..', [certs])).toEqual({});
      expect(await loadTlsFiles('.', [certs])).toEqual({});
      // the control: a real host's directory is read
      expect((await loadTlsFiles('reg.example:5000', [certs])).ca).toContain('CA');
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
