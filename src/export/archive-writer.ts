import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import tar from 'tar-stream';
import { KilnError } from '../errors/index.js';

/** Archive members get a fixed mtime so saving the same images twice gives the same bytes. */
const MTIME = new Date(0);

/**
 * A tar file written next to its destination and renamed into place when
 * complete, so an interrupted save never leaves a truncated archive under the
 * requested name.
 */
export class ArchiveWriter implements ArchiveSink {
  private readonly pack = tar.pack();
  private readonly tmp: string;
  private readonly done: Promise<void>;
  private readonly dirs = new Set<string>();

  constructor(private readonly dest: string) {
    this.tmp = join(dirname(dest), `.${basename(dest)}.${randomBytes(4).toString('hex')}.tmp`);
    this.done = pipeline(this.pack, createWriteStream(this.tmp, { mode: 0o644 }));
    // surfaced by finish()/abort(); avoid an unhandled rejection meanwhile
    this.done.catch(() => undefined);
  }

  private ensureDirs(name: string): void {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (this.dirs.has(d)) continue;
      this.dirs.add(d);
      this.pack.entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime: MTIME });
    }
  }

  addBytes(name: string, bytes: Buffer): Promise<void> {
    this.ensureDirs(name);
    return new Promise((resolve, reject) => {
      this.pack.entry({ name, size: bytes.length, mode: 0o644, mtime: MTIME }, bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Streams `size` bytes from `src` as member `name`; a short or long source fails the archive. */
  async addStream(name: string, size: number, src: Readable): Promise<void> {
    this.ensureDirs(name);
    let cbErr: Error | null | undefined;
    const entryDone = new Promise<void>((resolve, reject) => {
      const entry = this.pack.entry({ name, size, mode: 0o644, mtime: MTIME }, (err) => {
        cbErr = err;
        if (err) reject(err);
        else resolve();
      });
      pipeline(src, entry).catch((e: unknown) => {
        this.pack.destroy(e as Error);
        reject(e);
      });
    });
    await entryDone;
    if (cbErr) throw new KilnError('ARCHIVE', `writing ${name}: ${cbErr.message}`);
  }

  async finish(): Promise<void> {
    this.pack.finalize();
    try {
      await this.done;
      await rename(this.tmp, this.dest);
    } catch (e) {
      await rm(this.tmp, { force: true });
      throw e;
    }
  }

  async abort(): Promise<void> {
    this.pack.destroy();
    await this.done.catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}

/** Where an archive's members go: a tar file, or a plain directory (an OCI layout with `tar=false`). */
export interface ArchiveSink {
  addBytes(name: string, bytes: Buffer): Promise<void>;
  addStream(name: string, size: number, src: Readable): Promise<void>;
  finish(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * The members of an archive as files under a directory. They are written into
 * a sibling temporary directory that replaces `dest` only at `finish`, so an
 * interrupted export never leaves half a layout behind.
 */
export class DirectoryWriter implements ArchiveSink {
  private readonly tmp: string;

  constructor(private readonly dest: string) {
    this.tmp = `${dest}.kiln-tmp-${process.pid}`;
  }

  private async target(name: string): Promise<string> {
    const p = join(this.tmp, name);
    await mkdir(dirname(p), { recursive: true });
    return p;
  }

  async addBytes(name: string, bytes: Buffer): Promise<void> {
    await writeFile(await this.target(name), bytes);
  }

  async addStream(name: string, size: number, src: Readable): Promise<void> {
    const p = await this.target(name);
    await pipeline(src, createWriteStream(p));
    const got = (await stat(p)).size;
    if (got !== size) throw new KilnError('ARCHIVE', `${name}: wrote ${got} bytes, expected ${size}`);
  }

  async finish(): Promise<void> {
    await rm(this.dest, { recursive: true, force: true });
    await rename(this.tmp, this.dest);
  }

  async abort(): Promise<void> {
    await rm(this.tmp, { recursive: true, force: true });
  }
}
