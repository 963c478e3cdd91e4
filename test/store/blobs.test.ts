import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/image/digest.js';
import { isKilnError } from '../../src/errors/index.js';
import { defaultRoot, Store } from '../../src/store/store.js';
import { tempDir, tempStore } from '../helpers/temp-dir.js';
import { expectValidOci } from '../helpers/oci-validate.js';

async function drain(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isKilnError(e) ? e.code : `non-kiln: ${String(e)}`;
  }
  return 'no error';
}

describe('store layout', () => {
  let t: Awaited<ReturnType<typeof tempStore>>;
  beforeEach(async () => (t = await tempStore()));
  afterEach(async () => t.cleanup());

  it('creates an OCI image layout plus kiln directories', async () => {
    const names = (await readdir(t.root)).sort();
    expect(names).toEqual(['blobs', 'cache', 'index.json', 'locks', 'meta', 'oci-layout', 's', 'tmp']);
    const layout = JSON.parse(await readFile(join(t.root, 'oci-layout'), 'utf8'));
    expect(layout).toEqual({ imageLayoutVersion: '1.0.0' });
    expectValidOci(layout, 'layout');
    expectValidOci(await readFile(join(t.root, 'index.json')), 'index');
    expect((await stat(join(t.root, 'blobs', 'sha256'))).isDirectory()).toBe(true);
  });

  it('reopening keeps index.json and sweeps tmp leftovers when alone', async () => {
    await writeFile(join(t.root, 'tmp', 'blob-stale'), 'x');
    await writeFile(join(t.root, 'tmp', 'partial', 'a'.repeat(64)), 'partial bytes');
    await t.store.close();
    const again = await Store.open(t.root);
    expect(await readdir(join(t.root, 'tmp'))).toEqual(['partial']);
    expect(await readdir(join(t.root, 'tmp', 'partial'))).toEqual(['a'.repeat(64)]);
    await again.close();
    t.store = await Store.open(t.root);
  });

  it('does not sweep tmp while another store object holds the root', async () => {
    // a second open in the same process shares the lock, so it is not alone only if another process holds it;
    // this checks that the held store is not swept underneath its in-flight files by a re-open
    await writeFile(join(t.root, 'tmp', 'blob-inflight'), 'x');
    const second = await Store.open(t.root);
    expect(await readdir(join(t.root, 'tmp'))).toContain('blob-inflight');
    await second.close();
  });

  it('defaultRoot follows KILN_ROOT, root, XDG_DATA_HOME, HOME', () => {
    expect(defaultRoot({ KILN_ROOT: '/x/y' }, 1000)).toBe('/x/y');
    expect(defaultRoot({}, 0)).toBe('/var/lib/kiln');
    expect(defaultRoot({ XDG_DATA_HOME: '/data' }, 1000)).toBe('/data/kiln');
    expect(defaultRoot({ HOME: '/home/u' }, 1000)).toBe('/home/u/.local/share/kiln');
  });
});

describe('blobs', () => {
  let t: Awaited<ReturnType<typeof tempStore>>;
  beforeEach(async () => (t = await tempStore()));
  afterEach(async () => t.cleanup());

  it('writes a blob by streaming and reads it back', async () => {
    const data = Buffer.from('hello kiln\n'.repeat(10000));
    const { digest, size } = await t.store.writeBlob(Readable.from([data.subarray(0, 5000), data.subarray(5000)]));
    expect(digest).toBe(sha256(data));
    expect(size).toBe(data.length);
    expect(await t.store.hasBlob(digest)).toBe(true);
    expect(await t.store.blobSize(digest)).toBe(data.length);
    expect(await readFile(t.store.blobPath(digest))).toEqual(data);
    expect(await drain(t.store.openBlob(digest, { verify: true }))).toEqual(data);
    expect(await drain(t.store.openBlob(digest, { start: 11 }))).toEqual(data.subarray(11));
    expect(await readdir(join(t.root, 'tmp'))).toEqual(['partial']);
  });

  it('refuses a blob whose digest does not match, publishes nothing and leaves no temp file', async () => {
    const data = Buffer.from('real content');
    const wrong = sha256('other content');
    const err = await t.store.writeBlob(Readable.from([data]), { digest: wrong }).catch((e: unknown) => e);
    expect(isKilnError(err) && err.code).toBe('DIGEST_MISMATCH');
    expect(String((err as Error).message)).toContain(wrong);
    expect(String((err as Error).message)).toContain(sha256(data));
    expect(await t.store.hasBlob(sha256(data))).toBe(false);
    expect(await t.store.hasBlob(wrong)).toBe(false);
    expect(await readdir(join(t.root, 'blobs', 'sha256'))).toEqual([]);
    expect(await readdir(join(t.root, 'tmp'))).toEqual(['partial']);
  });

  it('refuses a size mismatch, too short or too long', async () => {
    const data = Buffer.from('twelve bytes');
    expect(await codeOf(t.store.writeBlob(Readable.from([data]), { size: 11 }))).toBe('SIZE_MISMATCH');
    expect(await codeOf(t.store.writeBlob(Readable.from([data]), { size: 13 }))).toBe('SIZE_MISMATCH');
    expect(await readdir(join(t.root, 'blobs', 'sha256'))).toEqual([]);
    expect(await readdir(join(t.root, 'tmp'))).toEqual(['partial']);
  });

  it('a failing source publishes nothing and leaves no temp file', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('partial data');
      throw new Error('network went away');
    }
    await expect(t.store.writeBlob(failing())).rejects.toThrow('network went away');
    expect(await readdir(join(t.root, 'blobs', 'sha256'))).toEqual([]);
    expect(await readdir(join(t.root, 'tmp'))).toEqual(['partial']);
  });

  it('a blob larger than the write-behind window, in uneven chunks, lands byte for byte; a source failing with writes queued leaves nothing', async () => {
    const { randomBytes } = await import('node:crypto');
    const data = randomBytes(24 * 1024 * 1024 + 12345);
    // chunk sizes from 1 byte to ~3 MiB, so writes of different lengths are queued at once
    const sizes = [1, 4095, 65536, 3 * 1024 * 1024 + 7, 100, 1 << 20];
    async function* chunks(failAt?: number): AsyncGenerator<Uint8Array> {
      let off = 0;
      for (let i = 0; off < data.length; i++) {
        if (failAt !== undefined && off >= failAt) throw new Error('source failed mid-blob');
        const n = Math.min(sizes[i % sizes.length]!, data.length - off);
        yield data.subarray(off, off + n);
        off += n;
      }
    }
    const written = await t.store.writeBlob(chunks());
    expect(written).toEqual({ digest: sha256(data), size: data.length });
    expect((await readFile(t.store.blobPath(written.digest))).equals(data)).toBe(true);
    await expect(t.store.writeBlob(chunks(20 * 1024 * 1024))).rejects.toThrow('source failed mid-blob');
    expect(await readdir(join(t.root, 'blobs', 'sha256'))).toEqual([written.digest.slice(7)]);
    expect(await readdir(join(t.root, 'tmp'))).toEqual(['partial']);
  });

  it('verifying reads fail at the end when the blob on disk is corrupted', async () => {
    const { digest } = await t.store.putBytes(Buffer.from('{"a":1}'));
    await writeFile(t.store.blobPath(digest), '{"a":2}');
    expect(await codeOf(drain(t.store.openBlob(digest, { verify: true })))).toBe('DIGEST_MISMATCH');
    expect(await codeOf(t.store.readBlob(digest))).toBe('DIGEST_MISMATCH');
    // unverified reads return what is there
    expect((await drain(t.store.openBlob(digest))).toString()).toBe('{"a":2}');
    // writing the right bytes again repairs it
    await t.store.putBytes(Buffer.from('{"a":1}'));
    expect((await t.store.readBlob(digest)).toString()).toBe('{"a":1}');
  });

  it("verify 'once' trusts a big blob only while it is the very file kiln hashed when writing it", async () => {
    const { randomBytes } = await import('node:crypto');
    const { writeFileSync, readFileSync, statSync, openSync, writeSync, closeSync } = await import('node:fs');
    const { VERIFIED_RECORD_MIN_SIZE } = await import('../../src/store/verified-record.js');
    const data = randomBytes(VERIFIED_RECORD_MIN_SIZE + 1);
    const { digest } = await t.store.writeBlob(Readable.from([data]));
    const record = join(t.root, 'meta', 'verified', digest.slice('sha256:'.length));
    const st = statSync(t.store.blobPath(digest), { bigint: true });
    expect(readFileSync(record, 'utf8')).toBe(`${st.size} ${st.ino} ${st.ctimeNs}`);
    expect((await drain(t.store.openBlob(digest, { verify: 'once' }))).equals(data)).toBe(true);
    // one byte changed in place: the ctime moves, so the record no longer matches and the hash catches it
    const fd = openSync(t.store.blobPath(digest), 'r+');
    writeSync(fd, Buffer.from([data[0]! ^ 0xff]), 0, 1, 0);
    closeSync(fd);
    expect(await codeOf(drain(t.store.openBlob(digest, { verify: 'once' })))).toBe('DIGEST_MISMATCH');
    // a record forged for the damaged file is believed by 'once' (what it trusts is the record), never by a full verify (fsck)
    const now = statSync(t.store.blobPath(digest), { bigint: true });
    writeFileSync(record, `${now.size} ${now.ino} ${now.ctimeNs}`);
    expect(await codeOf(drain(t.store.openBlob(digest, { verify: 'once' })))).toBe('no error');
    expect(await codeOf(drain(t.store.openBlob(digest, { verify: true })))).toBe('DIGEST_MISMATCH');
    // rewriting the blob repairs it and records the new file
    await t.store.writeBlob(Readable.from([data]));
    expect((await drain(t.store.openBlob(digest, { verify: 'once' }))).equals(data)).toBe(true);
    expect(readFileSync(record, 'utf8')).not.toBe(`${now.size} ${now.ino} ${now.ctimeNs}`);
    // deleting the blob (GC) removes its record
    await t.store.deleteBlob(digest);
    expect(await readdir(join(t.root, 'meta', 'verified'))).toEqual([]);
  });

  it("small blobs get no record: verify 'once' hashes them", async () => {
    const { digest } = await t.store.putBytes(Buffer.from('{"a":1}'));
    expect(await readdir(join(t.root, 'meta', 'verified'))).toEqual([]);
    await writeFile(t.store.blobPath(digest), '{"a":2}');
    expect(await codeOf(drain(t.store.openBlob(digest, { verify: 'once' })))).toBe('DIGEST_MISMATCH');
  });

  it('reading a missing blob is NOT_FOUND', async () => {
    const d = sha256('nothing');
    expect(await codeOf(drain(t.store.openBlob(d)))).toBe('NOT_FOUND');
    expect(await codeOf(t.store.readBlob(d))).toBe('NOT_FOUND');
    expect(await t.store.blobSize(d)).toBeUndefined();
  });

  it('resumes partial downloads and publishes them only when complete and correct', async () => {
    const data = Buffer.from('0123456789'.repeat(100));
    const d = sha256(data);
    const p1 = (await t.store.openPartialBlob({ digest: d, size: data.length }))!;
    expect(p1.offset).toBe(0);
    await p1.append(data.subarray(0, 400));
    // an interrupted process; a later one (after a sweep) continues where it stopped
    await p1.release();
    await t.store.close();
    t.store = await Store.open(t.root);
    const p2 = (await t.store.openPartialBlob({ digest: d, size: data.length }))!;
    expect(p2.offset).toBe(400);
    await p2.append(data.subarray(400));
    expect(await p2.commit()).toEqual({ digest: d, size: data.length });
    expect(await t.store.readBlob(d)).toEqual(data);
    // published: nothing left to download
    expect(await t.store.openPartialBlob({ digest: d, size: data.length })).toBeUndefined();
    // a wrong partial is refused, and deleted on discard
    const bad = sha256('zzz');
    const p3 = (await t.store.openPartialBlob({ digest: bad, size: 7 }))!;
    await p3.append(Buffer.from('not zzz'));
    expect(await codeOf(p3.commit())).toBe('DIGEST_MISMATCH');
    await p3.discard();
    expect(await t.store.hasBlob(bad)).toBe(false);
    expect(await readdir(join(t.root, 'tmp', 'partial'))).toEqual([]);
  });

  it('a big download resumed across processes is recorded as verified when published', async () => {
    const { randomBytes } = await import('node:crypto');
    const { readFileSync, statSync } = await import('node:fs');
    const { VERIFIED_RECORD_MIN_SIZE } = await import('../../src/store/verified-record.js');
    const data = randomBytes(VERIFIED_RECORD_MIN_SIZE + 10);
    const d = sha256(data);
    const p1 = (await t.store.openPartialBlob({ digest: d, size: data.length }))!;
    await p1.append(data.subarray(0, 1000));
    await p1.release();
    await t.store.close();
    t.store = await Store.open(t.root);
    const p2 = (await t.store.openPartialBlob({ digest: d, size: data.length }))!;
    await p2.append(data.subarray(1000));
    await p2.commit();
    const st = statSync(t.store.blobPath(d), { bigint: true });
    expect(readFileSync(join(t.root, 'meta', 'verified', d.slice('sha256:'.length)), 'utf8')).toBe(`${st.size} ${st.ino} ${st.ctimeNs}`);
    expect((await drain(t.store.openBlob(d, { verify: 'once' }))).equals(data)).toBe(true);
  });

  it('lets one writer at a time hold a partial download; a waiter finds the blob published', async () => {
    const data = Buffer.alloc(3000, 7);
    const d = sha256(data);
    const first = (await t.store.openPartialBlob({ digest: d, size: data.length }))!;
    await first.append(data.subarray(0, 1000));
    let secondDone = false;
    const second = t.store.openPartialBlob({ digest: d, size: data.length }).then((p) => {
      secondDone = true;
      return p;
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(secondDone).toBe(false);
    await first.append(data.subarray(1000));
    await first.commit();
    expect(await second).toBeUndefined();
    expect(await t.store.readBlob(d)).toEqual(data);
    expect(await readdir(join(t.root, 'tmp', 'partial'))).toEqual([]);
  });

  it('records blob origins for cross-repository mounts', async () => {
    const { digest } = await t.store.putBytes(Buffer.from('layer'));
    expect(await t.store.blobOrigins(digest)).toEqual([]);
    await t.store.recordBlobOrigin(digest, 'localhost:5000', 'a/b');
    await t.store.recordBlobOrigin(digest, 'docker.io', 'library/busybox');
    await t.store.recordBlobOrigin(digest, 'localhost:5000', 'a/b');
    expect(await t.store.blobOrigins(digest)).toEqual([
      { registry: 'localhost:5000', repository: 'a/b' },
      { registry: 'docker.io', repository: 'library/busybox' },
    ]);
  });
});

describe('store open errors', () => {
  it('a root that cannot be created is a STORE error', async () => {
    const d = await tempDir();
    await writeFile(join(d.path, 'file'), 'x');
    expect(await codeOf(Store.open(join(d.path, 'file', 'root')))).toBe('STORE');
    await d.cleanup();
  });
});
