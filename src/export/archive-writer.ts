import { constants } from 'node:fs';
import { lstat, mkdir, mkdtemp, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError } from '../errors/index.js';
import { ReplacingFile, replaceFile } from '../fs/replace-file.js';
import { followUserLink } from '../fs/user-path.js';
import { CREATE_NEW } from '../fs/write-at.js';
import { END_OF_ARCHIVE, encodeHeader, paddingFor } from '../layer/tar-format.js';
import type { LayerEntry } from '../layer/types.js';
import type { LayoutSink } from '../image/oci-layout.js';

/** Archive members get a fixed mtime so saving the same images twice gives the same bytes. */
const MTIME = 0;

/**
 * A tar file written next to its destination and renamed into place when
 * complete (fs/'s ReplacingFile), so an interrupted save never leaves a
 * truncated archive under the requested name, and a symlink at the
 * destination is replaced, not written through. Headers come from the layer
 * tar encoder (one tar codec in kiln); members are written in the order they
 * are added, which an archive (index.json last, after the blobs it names)
 * needs and a layer forbids.
 */
export class ArchiveWriter implements LayoutSink {
  private readonly file: ReplacingFile;
  private readonly dirs = new Set<string>();

  constructor(private readonly dest: string) {
    this.file = new ReplacingFile(dest, 0o644);
  }

  private async write(b: Buffer): Promise<void> {
    const out = this.file.out;
    if (this.file.error) throw this.file.error;
    if (out.destroyed) throw new KilnError('ARCHIVE', `${this.dest}: the archive is closed`);
    if (!out.write(b)) {
      // drained, or closed by an error (then reported below); listeners go with the wait
      await new Promise<void>((resolve) => {
        const done = (): void => {
          out.off('drain', done);
          out.off('close', done);
          resolve();
        };
        out.on('drain', done);
        out.on('close', done);
      });
      if (this.file.error) throw this.file.error;
    }
  }

  private header(path: string, type: 'file' | 'directory', size: number): Buffer {
    const e: LayerEntry = { path, type, mode: type === 'directory' ? 0o755 : 0o644, uid: 0, gid: 0, mtime: MTIME, ...(type === 'file' ? { size } : {}) };
    return encodeHeader(e, MTIME);
  }

  private async ensureDirs(name: string): Promise<void> {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (this.dirs.has(d)) continue;
      this.dirs.add(d);
      await this.write(this.header(d, 'directory', 0));
    }
  }

  async addBytes(name: string, bytes: Buffer): Promise<void> {
    await this.ensureDirs(name);
    await this.write(this.header(name, 'file', bytes.length));
    await this.write(bytes);
    await this.write(Buffer.alloc(paddingFor(bytes.length)));
  }

  /** Streams `size` bytes from `src` as member `name`; a short or long source fails the archive. */
  async addStream(name: string, size: number, src: Readable): Promise<void> {
    await this.ensureDirs(name);
    await this.write(this.header(name, 'file', size));
    let n = 0;
    try {
      for await (const chunk of src as AsyncIterable<Buffer>) {
        n += chunk.length;
        if (n > size) throw new KilnError('ARCHIVE', `writing ${name}: the source holds more than ${size} bytes`);
        await this.write(chunk);
      }
    } finally {
      src.destroy();
    }
    if (n !== size) throw new KilnError('ARCHIVE', `writing ${name}: the source ended after ${n} of ${size} bytes`);
    await this.write(Buffer.alloc(paddingFor(size)));
  }

  async finish(): Promise<void> {
    try {
      await this.write(END_OF_ARCHIVE);
    } catch (e) {
      await this.file.discard();
      throw e;
    }
    await this.file.commit();
  }

  abort(): Promise<void> {
    return this.file.discard();
  }
}

/**
 * The members of an archive as files under a directory. They are written into
 * a fresh private directory beside `dest` (mkdtemp: a random name, mode 0700,
 * never one that already exists, so nobody else can have put anything in it)
 * that replaces `dest` only at `finish`, so an interrupted export never
 * leaves half a layout behind.
 */
export class DirectoryWriter implements LayoutSink {
  private tmp: Promise<string> | undefined;

  /**
   * The directories above `dest` are followed only as fs/user-path.ts allows: a link another user
   * planted on the way (/tmp/out → their directory) would make `finish` replace what is there.
   * `dest` itself is replaced, never followed.
   */
  constructor(
    private readonly dest: string,
    what = dest,
  ) {
    followUserLink(dirname(dest), what);
  }

  /** The temporary directory, made on first use (a constructor cannot wait for it). */
  private dir(): Promise<string> {
    // the destination's parents are made as BuildKit's MkdirAll makes them; the temp beside it is fresh
    this.tmp ??= mkdir(dirname(this.dest), { recursive: true }).then(() => mkdtemp(join(dirname(this.dest), `.${basename(this.dest)}.kiln-`)));
    return this.tmp;
  }

  private async target(name: string): Promise<string> {
    const p = join(await this.dir(), name);
    await mkdir(dirname(p), { recursive: true });
    return p;
  }

  async addBytes(name: string, bytes: Buffer): Promise<void> {
    const fh = await open(await this.target(name), CREATE_NEW, 0o644);
    try {
      await fh.writeFile(bytes);
    } finally {
      await fh.close();
    }
  }

  async addStream(name: string, size: number, src: Readable): Promise<void> {
    const p = await this.target(name);
    await pipeline(src, (await open(p, CREATE_NEW, 0o644)).createWriteStream());
    const got = (await stat(p)).size;
    if (got !== size) throw new KilnError('ARCHIVE', `${name}: wrote ${got} bytes, expected ${size}`);
  }

  async finish(): Promise<void> {
    const tmp = await this.dir();
    // mkdtemp's 0700 kept others out while it was filled; the layout itself is readable as any directory kiln makes
    const fh = await open(tmp, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      await fh.chmod(0o755);
    } finally {
      await fh.close();
    }
    await rm(this.dest, { recursive: true, force: true });
    await rename(tmp, this.dest);
  }

  async abort(): Promise<void> {
    if (this.tmp) await rm(await this.tmp, { recursive: true, force: true });
  }
}

/**
 * A layout directory updated in place (`--cache-to type=local`): blobs
 * already there are kept, each file is written beside its name under a fresh
 * random name and renamed into place (fs/'s replaceFile), and index.json,
 * written last, switches readers to the new content at once. Other images'
 * blobs in the directory are left alone. The directories it makes are checked
 * not to be symlinks, so nothing lands outside `dest` through one.
 */
export class LayoutDirectory implements LayoutSink {
  private readonly dest: string;

  /**
   * `dest` as the user named it: a symlink there is followed only as fs/user-path.ts allows (one
   * another user planted in /tmp is refused, as for every output path); `what` names the option.
   */
  constructor(dest: string, what = dest) {
    this.dest = followUserLink(dest, what);
  }

  async has(name: string): Promise<boolean> {
    // lstat: a symlink named as a blob is not that blob (the reader refuses it too); it is replaced
    return Boolean((await lstat(join(this.dest, name)).catch(() => undefined))?.isFile());
  }

  /** `dest/name`'s directory made where missing; each of its components a real directory, never a symlink. */
  private async parentOf(name: string): Promise<string> {
    let dir = this.dest;
    await mkdir(dir, { recursive: true });
    for (const c of name.split('/').slice(0, -1)) {
      dir = join(dir, c);
      await mkdir(dir).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EEXIST') throw e;
      });
      if (!(await lstat(dir)).isDirectory()) throw new KilnError('UNSAFE_PATH', `${dir} is not a directory (a symlink or a file); nothing is written through it`);
    }
    return join(dir, basename(name));
  }

  async addBytes(name: string, bytes: Buffer): Promise<void> {
    await replaceFile(await this.parentOf(name), bytes, { mode: 0o644, replaceEntry: true });
  }

  async addStream(name: string, size: number, src: Readable): Promise<void> {
    await replaceFile(await this.parentOf(name), src, { mode: 0o644, size, replaceEntry: true });
  }

  async finish(): Promise<void> {}

  async abort(): Promise<void> {}
}
