import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Index } from '../../src/image/types.js';
import { parseReference, pull, push } from '../../src/registry/index.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { makeRandomIndex, tempStore, uniqueRepo } from './helpers/images.js';

const reg = inject('registry');
const run = promisify(execFile);

async function skopeo(...args: string[]): Promise<string> {
  const { stdout } = await run('skopeo', args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

describe('interop with skopeo', () => {
  let s: Awaited<ReturnType<typeof tempStore>>;
  let tmp: string;
  beforeAll(async () => {
    s = await tempStore();
    tmp = await mkdtemp(join(tmpdir(), 'kiln-interop-'));
  });
  afterAll(async () => {
    await s.dispose();
    await rm(tmp, { recursive: true, force: true });
  });

  it('an image pushed by kiln is copied by skopeo with the same manifest digest', async () => {
    const ref = `${reg.anon}/${uniqueRepo('interop')}:kiln`;
    const desc = await makeBusyboxImage(s.store, parseReference(ref).toString());
    const pushed = await push(s.store, ref);
    expect(pushed.digest).toBe(desc.digest);
    const layout = join(tmp, 'from-kiln');
    await skopeo('copy', '--quiet', '--src-tls-verify=false', `docker://${ref}`, `oci:${layout}:x`);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as Index;
    expect(index.manifests[0]!.digest).toBe(desc.digest);
    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}`);
    expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`).toBe(desc.digest);
  });

  it('an image pushed by skopeo is pulled by kiln with the same manifest digest', async () => {
    const other = await tempStore();
    try {
      const desc = await makeBusyboxImage(other.store, 'src');
      const ref = `${reg.anon}/${uniqueRepo('interop')}:skopeo`;
      await skopeo('copy', '--quiet', '--dest-tls-verify=false', `oci:${other.root}:src`, `docker://${ref}`);
      const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}`);
      const skopeoDigest = `sha256:${createHash('sha256').update(raw).digest('hex')}`;
      const fresh = await tempStore();
      try {
        const r = await pull(fresh.store, ref);
        expect(r.manifestDigest).toBe(skopeoDigest);
        expect(r.manifestDigest).toBe(desc.digest);
        expect(r.image?.layers.length).toBe(1);
      } finally {
        await fresh.dispose();
      }
    } finally {
      await other.dispose();
    }
  });

  it('an image pushed by skopeo in Docker schema 2 format is pulled by kiln byte for byte', async () => {
    const other = await tempStore();
    try {
      await makeBusyboxImage(other.store, 'src');
      const ref = `${reg.anon}/${uniqueRepo('interop')}:v2s2`;
      await skopeo('copy', '--quiet', '--format', 'v2s2', '--dest-tls-verify=false', `oci:${other.root}:src`, `docker://${ref}`);
      const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}`);
      const fresh = await tempStore();
      try {
        const r = await pull(fresh.store, ref);
        expect(r.descriptor.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
        expect(r.manifestDigest).toBe(`sha256:${createHash('sha256').update(raw).digest('hex')}`);
      } finally {
        await fresh.dispose();
      }
    } finally {
      await other.dispose();
    }
  });

  it('an index pushed by kiln is read by skopeo inspect --raw, byte for byte', async () => {
    const ref = `${reg.anon}/${uniqueRepo('interop')}:index`;
    const { descriptor, children } = await makeRandomIndex(s.store, parseReference(ref).toString());
    await push(s.store, ref);
    const raw = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${ref}`);
    expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`).toBe(descriptor.digest);
    const index = JSON.parse(raw) as Index;
    expect(index.manifests.map((m) => m.digest)).toEqual(children.map((c) => c.descriptor.digest));
    const arm = await skopeo('inspect', '--raw', '--tls-verify=false', `docker://${reg.anon}/${parseReference(ref).repository}@${children[1]!.descriptor.digest}`);
    expect(`sha256:${createHash('sha256').update(arm).digest('hex')}`).toBe(children[1]!.descriptor.digest);
  });
});
