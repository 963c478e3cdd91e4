import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync } from 'node:fs';
import { open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { KilnError } from '../../src/errors/index.js';
import { type Digest, digestHex } from '../../src/image/digest.js';
import type { BlobStore, BlobWriteExpectation } from '../../src/image/blob-store.js';

/** A test-only BlobStore: a real directory, every blob sha256-verified on write. */
export class DirBlobStore implements BlobStore {
  readonly dir: string;
  private seq = 0;
  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    mkdirSync(join(dir, 'blobs'), { recursive: true });
  }
  blobPath(d: Digest): string {
    return join(this.dir, 'blobs', digestHex(d));
  }
  async hasBlob(d: Digest): Promise<boolean> {
    return (await this.blobSize(d)) !== undefined;
  }
  async blobSize(d: Digest): Promise<number | undefined> {
    try {
      return (await stat(this.blobPath(d))).size;
    } catch {
      return undefined;
    }
  }
  async writeBlob(data: Readable | AsyncIterable<Uint8Array>, expect?: BlobWriteExpectation): Promise<{ digest: Digest; size: number }> {
    const tmp = join(this.dir, 'tmp', `w${process.pid}-${this.seq++}`);
    const fh = await open(tmp, 'w');
    const h = createHash('sha256');
    let size = 0;
    try {
      for await (const chunk of data as AsyncIterable<Uint8Array>) {
        h.update(chunk);
        size += chunk.length;
        await fh.write(chunk);
      }
    } catch (e) {
      await fh.close();
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    const digest = `sha256:${h.digest('hex')}` as Digest;
    if ((expect?.digest && expect.digest !== digest) || (expect?.size !== undefined && expect.size !== size)) {
      await rm(tmp, { force: true });
      throw new KilnError('DIGEST_MISMATCH', `blob mismatch: ${digest}`);
    }
    await rename(tmp, this.blobPath(digest));
    return { digest, size };
  }
  async putBytes(bytes: Uint8Array): Promise<{ digest: Digest; size: number }> {
    return this.writeBlob(Readable.from([bytes]));
  }
  openBlob(d: Digest): Readable {
    return createReadStream(this.blobPath(d));
  }
  async readBlob(d: Digest): Promise<Buffer> {
    return readFile(this.blobPath(d));
  }
}
