import { createPrivateKey, createPublicKey, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import nacl from 'tweetnacl';
import { KilnError } from '../errors/index.js';

/**
 * Key files in cosign's format. `cosign generate-key-pair` writes the private
 * key as a PEM block ("ENCRYPTED SIGSTORE PRIVATE KEY", formerly "ENCRYPTED
 * COSIGN PRIVATE KEY") holding JSON: scrypt parameters and salt, a NaCl
 * secretbox nonce, and the ciphertext of the PKCS#8 DER key. Node's crypto has
 * scrypt but not XSalsa20-Poly1305, hence tweetnacl for the box. Plain PKCS#8
 * and SEC1 PEM keys (as openssl writes them) are accepted too.
 */
const ENCRYPTED_LABELS = ['ENCRYPTED SIGSTORE PRIVATE KEY', 'ENCRYPTED COSIGN PRIVATE KEY'];

interface EncryptedKey {
  kdf: { name: string; params: { N: number; r: number; p: number }; salt: string };
  cipher: { name: string; nonce: string };
  ciphertext: string;
}

function pemBlock(text: string): { label: string; der: Buffer } | undefined {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) return undefined;
  return { label: m[1]!, der: Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64') };
}

function scrypt(password: string, salt: Buffer, p: { N: number; r: number; p: number }): Buffer {
  // bounded so a hostile key file cannot make kiln allocate gigabytes
  if (p.N > 1 << 20 || p.r > 16 || p.p > 16) throw new KilnError('USAGE', 'key file: scrypt parameters out of range');
  return scryptSync(Buffer.from(password, 'utf8'), salt, 32, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r * p.p + (64 << 20) });
}

/** More than any key file holds (a cosign key is under 1 KiB). */
const KEY_FILE_LIMIT = 64 * 1024;
/** How long a pipe's writer may take to start. */
const KEY_PIPE_WAIT_MS = 30_000;

/**
 * The text of a key file the user named, at most 64 KiB of it. A symlink is
 * followed, as for any path typed on a command line; a regular file is read
 * after a size check, a pipe or character device (`--key <(pass show key)`)
 * only up to the limit, so /dev/zero cannot be read without end. A pipe is
 * read until its writer closes it, for 30 s at most;
 * a FIFO nobody writes to reads as empty. Errors start with `what`
 * (`--sign-key FILE`).
 */
export async function readKeyFile(path: string, what: string): Promise<string> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    // O_NONBLOCK: finding out what the path is must not wait for a FIFO's writer
    fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw new KilnError('USAGE', `${what}: ${(e as Error).message}`);
  }
  try {
    const st = await fh.stat();
    if (st.isFile() && st.size > KEY_FILE_LIMIT) throw new KilnError('USAGE', `${what}: ${st.size} bytes, more than a key file holds (${KEY_FILE_LIMIT / 1024} KiB at most)`);
    if (!st.isFile() && !st.isFIFO() && !st.isCharacterDevice()) throw new KilnError('USAGE', `${what}: not a file, pipe or character device`);
    const buf = Buffer.alloc(KEY_FILE_LIMIT + 1);
    let n = 0;
    const started = Date.now();
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, n, buf.length - n, null));
      } catch (e) {
        // a pipe whose writer has not written yet (opened non-blocking, so a pipe nobody writes ends at once)
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN' || Date.now() - started > KEY_PIPE_WAIT_MS) throw new KilnError('USAGE', `${what}: ${(e as Error).message}`);
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > KEY_FILE_LIMIT) throw new KilnError('USAGE', `${what}: more than a key file holds (${KEY_FILE_LIMIT / 1024} KiB at most)`);
    }
    return buf.subarray(0, n).toString('utf8');
  } finally {
    await fh.close();
  }
}

/** Reads a private key (cosign-encrypted or plain PEM); the password comes from the caller (COSIGN_PASSWORD, as cosign). */
export function loadPrivateKey(text: string, password: string, file: string): KeyObject {
  const block = pemBlock(text);
  if (!block) throw new KilnError('USAGE', `${file}: not a PEM key file`);
  let key: KeyObject;
  if (ENCRYPTED_LABELS.includes(block.label)) {
    let enc: EncryptedKey;
    try {
      enc = JSON.parse(block.der.toString('utf8')) as EncryptedKey;
    } catch {
      throw new KilnError('USAGE', `${file}: encrypted key block is not cosign's JSON`);
    }
    if (enc.kdf?.name !== 'scrypt' || enc.cipher?.name !== 'nacl/secretbox') {
      throw new KilnError('UNSUPPORTED', `${file}: key encrypted with ${enc.kdf?.name}/${enc.cipher?.name}; kiln reads scrypt + nacl/secretbox (cosign's format)`);
    }
    const secret = scrypt(password, Buffer.from(enc.kdf.salt, 'base64'), enc.kdf.params);
    const plain = nacl.secretbox.open(Buffer.from(enc.ciphertext, 'base64'), Buffer.from(enc.cipher.nonce, 'base64'), secret);
    if (!plain) throw new KilnError('USAGE', `${file}: wrong password for the key (set COSIGN_PASSWORD)`);
    key = createPrivateKey({ key: Buffer.from(plain), format: 'der', type: 'pkcs8' });
  } else {
    try {
      key = createPrivateKey({ key: text, format: 'pem' });
    } catch (e) {
      throw new KilnError('USAGE', `${file}: cannot read the private key: ${(e as Error).message}`);
    }
  }
  assertP256(key, file);
  return key;
}

export function loadPublicKey(text: string, file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch (e) {
    throw new KilnError('USAGE', `${file}: cannot read the public key: ${(e as Error).message}`);
  }
  assertP256(key, file);
  return key;
}

function assertP256(key: KeyObject, file: string): void {
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KilnError('UNSUPPORTED', `${file}: kiln signs with ECDSA P-256 keys (as cosign generates); this key is ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}`);
  }
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}-----END ${label}-----\n`;
}

/** A new P-256 key pair in cosign's file format (what `cosign generate-key-pair` writes). */
export function generateKeyPair(password: string, generate: () => { privateKey: KeyObject; publicKey: KeyObject }): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generate();
  const params = { N: 32768, r: 8, p: 1 };
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const secret = scrypt(password, salt, params);
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  const box = nacl.secretbox(der, nonce, secret);
  const body: EncryptedKey = {
    kdf: { name: 'scrypt', params, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(box).toString('base64'),
  };
  return {
    privatePem: pem('ENCRYPTED SIGSTORE PRIVATE KEY', Buffer.from(JSON.stringify(body))),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}
