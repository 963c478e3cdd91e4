import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { canonicalJSON } from '../../src/image/canonical-json.js';
import { sha256 } from '../../src/image/digest.js';
import { MediaType } from '../../src/image/media-types.js';
import type { Manifest } from '../../src/image/types.js';
import { parseReference, push, RegistryClient } from '../../src/registry/index.js';
import { generateKeyPair, loadPrivateKey, loadPublicKey, SIGNATURE_ANNOTATION, signatureTag, signImage, verifyImage } from '../../src/sign/index.js';
import { runKiln } from '../helpers/kiln-cli.js';
import { makeRandomImage, tempStore, uniqueRepo } from '../registry/helpers/images.js';

const reg = inject('registry');

describe('cosign-format signatures against a real registry', () => {
  let dir: string;
  let src: Awaited<ReturnType<typeof tempStore>>;
  let client: RegistryClient;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kiln-sign-'));
    src = await tempStore();
    client = new RegistryClient();
  });
  afterAll(async () => {
    await client.close();
    await src.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  async function pushed(tag = 'v1') {
    const ref = `${reg.anon}/${uniqueRepo('signed')}:${tag}`;
    await makeRandomImage(src.store, parseReference(ref).toString(), [2000]);
    const r = await push(src.store, ref);
    return { ref, digest: r.digest };
  }

  it('generate-key-pair, sign and verify through bin/kiln; the signature verifies with openssl too', async () => {
    const { ref, digest } = await pushed();
    const env = { COSIGN_PASSWORD: 'pw' };
    const prefix = join(dir, 'k1');
    expect((await runKiln(['generate-key-pair', '--output-key-prefix', prefix], { env })).code).toBe(0);
    expect(await readFile(`${prefix}.key`, 'utf8')).toContain('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----');
    const signed = await runKiln(['sign', '--key', `${prefix}.key`, ref], { env });
    expect(signed.stderr).toContain(digest);
    expect(signed.code).toBe(0);
    const verified = await runKiln(['verify', '--key', `${prefix}.pub`, '--json', ref]);
    expect(verified.code).toBe(0);
    const payloads = JSON.parse(verified.stdout) as Array<{ critical: { image: Record<string, string>; identity: Record<string, string>; type: string } }>;
    expect(payloads[0]!.critical).toEqual({ identity: { 'docker-reference': parseReference(ref).name }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' });

    // the .sig manifest has cosign's shape; an independent ECDSA check (openssl) accepts the signature
    const sigRef = parseReference(ref).withTag(signatureTag(digest));
    const m = JSON.parse((await client.getManifest(sigRef)).bytes.toString()) as Manifest;
    expect(m.mediaType).toBe(MediaType.OCI_MANIFEST);
    expect(m.layers).toHaveLength(1);
    expect(m.layers[0]!.mediaType).toBe('application/vnd.dev.cosign.simplesigning.v1+json');
    const chunks: Uint8Array[] = [];
    for await (const c of client.blob(sigRef, m.layers[0]!)) chunks.push(c);
    await writeFile(join(dir, 'payload'), Buffer.concat(chunks));
    await writeFile(join(dir, 'sig'), Buffer.from(m.layers[0]!.annotations![SIGNATURE_ANNOTATION]!, 'base64'));
    const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', `${prefix}.pub`, '-signature', join(dir, 'sig'), join(dir, 'payload')], { encoding: 'utf8' });
    expect(out.trim()).toBe('Verified OK');
  });

  it('verify fails for another key, for a tag moved to other content, and for a payload edited in the registry', async () => {
    const { ref } = await pushed();
    const k = generateKeyPair('', () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
    const other = generateKeyPair('', () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
    const priv = loadPrivateKey(k.privatePem, '', 'k');
    const pub = loadPublicKey(k.publicPem, 'k.pub');
    await signImage(client, parseReference(ref), priv);
    expect((await verifyImage(client, parseReference(ref), pub)).signatures).toHaveLength(1);
    await expect(verifyImage(client, parseReference(ref), loadPublicKey(other.publicPem, 'o.pub'))).rejects.toThrow(/no valid signature.*does not verify/);

    // the signature manifest is copied to the new digest's tag by an attacker: the payload names the old digest
    const old = await verifyImage(client, parseReference(ref), pub);
    const oldSig = parseReference(ref).withTag(signatureTag(old.digest));
    const sigBytes = (await client.getManifest(oldSig)).bytes;
    await makeRandomImage(src.store, parseReference(ref).toString(), [3000]);
    const moved = await push(src.store, ref);
    expect(moved.digest).not.toBe(old.digest);
    await client.putManifest(parseReference(ref).withTag(signatureTag(moved.digest)), signatureTag(moved.digest), sigBytes, MediaType.OCI_MANIFEST);
    await expect(verifyImage(client, parseReference(ref), pub)).rejects.toThrow(/payload signs .* the image is/);

    // a payload rewritten to name the new digest, keeping the old signature
    const m = JSON.parse(sigBytes.toString()) as Manifest;
    const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': parseReference(ref).name }, image: { 'docker-manifest-digest': moved.digest }, type: 'cosign container image signature' }, optional: null }));
    const layer = { ...m.layers[0]!, digest: sha256(payload), size: payload.length };
    const forged: Manifest = { ...m, layers: [layer] };
    const sigRef = parseReference(ref).withTag(signatureTag(moved.digest));
    await client.pushBlob(sigRef, layer, async function* (s, e) { yield payload.subarray(s, e); });
    await client.putManifest(sigRef, sigRef.tag!, Buffer.from(canonicalJSON(forged)), MediaType.OCI_MANIFEST);
    await expect(verifyImage(client, parseReference(ref), pub)).rejects.toThrow(/does not verify/);
  });

  it('a second signature is appended, not replacing the first; a wrong password is a clear error', async () => {
    const { ref } = await pushed();
    const a = generateKeyPair('a', () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
    const b = generateKeyPair('b', () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
    expect(() => loadPrivateKey(a.privatePem, 'wrong', 'a.key')).toThrow(/a.key: wrong password/);
    await signImage(client, parseReference(ref), loadPrivateKey(a.privatePem, 'a', 'a.key'));
    await signImage(client, parseReference(ref), loadPrivateKey(b.privatePem, 'b', 'b.key'));
    expect((await verifyImage(client, parseReference(ref), loadPublicKey(a.publicPem, 'a.pub'))).signatures).toHaveLength(1);
    expect((await verifyImage(client, parseReference(ref), loadPublicKey(b.publicPem, 'b.pub'))).signatures).toHaveLength(1);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    expect(() => loadPublicKey(rsa, 'rsa.pub')).toThrow(/ECDSA P-256/);
  });

  it('unsigned image: verify exits non-zero with one line', async () => {
    const { ref } = await pushed();
    const k = generateKeyPair('', () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }));
    await writeFile(join(dir, 'u.pub'), k.publicPem);
    const r = await runKiln(['verify', '--key', join(dir, 'u.pub'), ref]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/no signatures found/);
  });
});
