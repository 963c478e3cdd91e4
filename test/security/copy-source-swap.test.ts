import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BuildContext } from '../../src/context/build-context.js';
import { HashCache } from '../../src/context/hash-cache.js';
import { tarStream } from '../../src/layer/tar-writer.js';
import { planCopy } from '../../src/steps/copy.js';
import type { LayerEntry } from '../../src/layer/types.js';
import { tempDir } from '../layer/helpers.js';

/**
 * A COPY lists its sources, then the layer writer opens them. Someone who can write the context
 * (another user of a shared workspace, a process racing the build) can swap a listed file, or a
 * directory above it, for a symlink in between. These tests stop at that moment: the plan is made,
 * the swap is done, then the layer is written. The writer must refuse, and the host file's bytes
 * must not reach the layer. The secret has the listed file's exact size, so a size check alone
 * would not notice.
 */
const SECRET = 'host-secret-0123456789\n';
const DECOY = 'x'.repeat(SECRET.length);

let t: { path: string; cleanup: () => void };
let ctx: string;
let outside: string;
beforeEach(() => {
  t = tempDir('kiln-swap-');
  ctx = join(t.path, 'ctx');
  outside = join(t.path, 'outside');
  mkdirSync(join(ctx, 'dir'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(ctx, 'dir', 'f.txt'), DECOY);
  writeFileSync(join(ctx, 'dir', 'big.bin'), Buffer.alloc(300_000, 7));
  writeFileSync(join(outside, 'f.txt'), SECRET, { mode: 0o600 });
  writeFileSync(join(outside, 'big.bin'), Buffer.alloc(300_000, 0x53));
});
afterEach(() => t.cleanup());

async function planThenSwap(sources: string[], swap: () => void): Promise<{ error: unknown; bytes: Buffer }> {
  const planned = await planCopy({ kind: 'COPY', sources, dest: '/app/', workdir: '/', from: BuildContext.open(ctx), hashCache: HashCache.load(), now: 0 });
  try {
    const entries = planned.entries; // the listing, as the layer writer gets it
    swap();
    const parts: Buffer[] = [];
    try {
      for await (const c of tarStream(entries)) parts.push(c);
    } catch (error) {
      return { error, bytes: Buffer.concat(parts) };
    }
    return { error: undefined, bytes: Buffer.concat(parts) };
  } finally {
    planned.dispose();
  }
}

describe('COPY sources swapped after they were listed', () => {
  it('a file swapped for a symlink to a host file is refused, and no byte of it is read', async () => {
    const r = await planThenSwap(['dir/f.txt'], () => {
      rmSync(join(ctx, 'dir', 'f.txt'));
      symlinkSync(join(outside, 'f.txt'), join(ctx, 'dir', 'f.txt'));
    });
    expect(r.error).toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining('"app/f.txt" was replaced by a symlink') });
    expect(r.bytes.includes(Buffer.from('host-secret'))).toBe(false);
  });

  it('a directory above the file swapped for a symlink to a host directory is refused, small file and streamed file alike', async () => {
    for (const name of ['f.txt', 'big.bin']) {
      const r = await planThenSwap([`dir/${name}`], () => {
        renameSync(join(ctx, 'dir'), join(ctx, 'moved'));
        symlinkSync(outside, join(ctx, 'dir'));
      });
      expect(r.error, name).toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining(`"app/${name}" was replaced by another file`) });
      expect(r.bytes.includes(Buffer.from('host-secret')), name).toBe(false);
      expect(r.bytes.includes(Buffer.alloc(512, 0x53)), name).toBe(false);
      rmSync(join(ctx, 'dir'));
      renameSync(join(ctx, 'moved'), join(ctx, 'dir'));
    }
  });

  it('a file swapped for a FIFO fails at once instead of blocking the build', async () => {
    const r = await planThenSwap(['dir/f.txt'], () => {
      rmSync(join(ctx, 'dir', 'f.txt'));
      execFileSync('mkfifo', [join(ctx, 'dir', 'f.txt')]);
    });
    expect(r.error).toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining('was replaced by something that is not a regular file') });
  });

  it('an unchanged listing is written as listed (the check refuses only a swap)', async () => {
    const r = await planThenSwap(['dir/'], () => {});
    expect(r.error).toBeUndefined();
    expect(r.bytes.includes(Buffer.from(DECOY))).toBe(true);
  });
});

/**
 * A layer of many small files has them read ahead, in batches, by a worker thread (layer/read-ahead.ts)
 * while the main thread writes the tar. The same swaps, made to a file far enough into the copy
 * that the worker is the one opening it, must end the same way: the worker reads only what was
 * listed, and leaves any other file to the writer's own checks and errors.
 */
describe('COPY sources swapped after they were listed, in a layer large enough to be read ahead', () => {
  // 2,100 files sorting before the swapped ones: the layer writer reads the first 2,048 itself, the rest are read
  // ahead in batches (by the worker, or by the writer's thread while the worker is still starting: the same checks)
  beforeEach(() => {
    for (let i = 0; i < 2100; i++) writeFileSync(join(ctx, 'dir', `a${String(i).padStart(4, '0')}`), `decoy ${i}\n`);
    mkdirSync(join(ctx, 'dir', 'zsub'));
    writeFileSync(join(ctx, 'dir', 'zsub', 'f.txt'), DECOY);
  });

  it('a file swapped for a symlink to a host file is refused, and no byte of it is read', async () => {
    const r = await planThenSwap(['dir/'], () => {
      rmSync(join(ctx, 'dir', 'f.txt'));
      symlinkSync(join(outside, 'f.txt'), join(ctx, 'dir', 'f.txt'));
    });
    expect(r.error).toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining('"app/f.txt" was replaced by a symlink') });
    expect(r.bytes.includes(Buffer.from('host-secret'))).toBe(false);
    // the files before it were written: the refusal came where the swap was, not at the start
    expect(r.bytes.includes(Buffer.from('decoy 2099\n'))).toBe(true);
  });

  it('a directory above a file swapped for a symlink to a host directory is refused; no host byte reaches the layer', async () => {
    const r = await planThenSwap(['dir/'], () => {
      renameSync(join(ctx, 'dir', 'zsub'), join(ctx, 'moved'));
      symlinkSync(outside, join(ctx, 'dir', 'zsub'));
    });
    expect(r.error).toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining('"app/zsub/f.txt" was replaced by another file') });
    expect(r.bytes.includes(Buffer.from('host-secret'))).toBe(false);
  });

  it('a file swapped for a FIFO fails at once instead of blocking the build', async () => {
    const r = await planThenSwap(['dir/'], () => {
      rmSync(join(ctx, 'dir', 'f.txt'));
      execFileSync('mkfifo', [join(ctx, 'dir', 'f.txt')]);
    });
    expect(r.error).toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining('"app/f.txt" was replaced by something that is not a regular file') });
  });

  it('a file that grew or shrank since it was listed fails with its sizes, as one read by the writer does', async () => {
    for (const [content, got] of [[DECOY + 'more', `more than ${DECOY.length}`], ['short', '5']] as const) {
      const r = await planThenSwap(['dir/'], () => writeFileSync(join(ctx, 'dir', 'f.txt'), content));
      expect(r.error).toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining(`"app/f.txt" changed while writing the layer (expected ${DECOY.length} bytes, got ${got})`) });
      writeFileSync(join(ctx, 'dir', 'f.txt'), DECOY);
    }
  });

  it('an unchanged listing is written as listed, every file with its own bytes', async () => {
    const r = await planThenSwap(['dir/'], () => {});
    expect(r.error).toBeUndefined();
    const out = join(t.path, 'out');
    mkdirSync(out);
    execFileSync('tar', ['-xf', '-', '-C', out], { input: r.bytes });
    for (let i = 0; i < 2100; i += 37) expect(readFileSync(join(out, 'app', `a${String(i).padStart(4, '0')}`), 'utf8')).toBe(`decoy ${i}\n`);
    expect(readFileSync(join(out, 'app', 'zsub', 'f.txt'), 'utf8')).toBe(DECOY);
  });
});

describe('a big source that is a FIFO by the time the layer is written, with no listed inode to check (a RUN upper directory entry)', () => {
  // big files are read synchronously (src/layer/tar-writer.ts): O_NONBLOCK is what keeps such a read from blocking the process
  const entry = (path: string): LayerEntry => ({ path: 'data/big.bin', type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 0, size: 300_000, sourcePath: path });
  async function write(e: LayerEntry): Promise<unknown> {
    try {
      for await (const c of tarStream([e])) void c;
    } catch (error) {
      return error;
    }
    return undefined;
  }

  it('with no writer, fails at once on its size', async () => {
    const fifo = join(t.path, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const err = await write(entry(fifo));
    expect(err).toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining('"data/big.bin" changed while writing the layer (expected 300000 bytes, got 0)') });
  });

  it('with a writer that holds it open and sends nothing, fails at once (EAGAIN, named with the entry) instead of waiting for it', async () => {
    const fifo = join(t.path, 'fifo2');
    execFileSync('mkfifo', [fifo]);
    const held = openSync(fifo, constants.O_RDWR);
    try {
      const err = await write(entry(fifo));
      expect(err).toMatchObject({ code: 'ARCHIVE', message: 'file "data/big.bin" could not be read while writing the layer (EAGAIN)' });
      // a small file is read in one call of its own: the same refusal
      const small = await write({ ...entry(fifo), path: 'data/small.txt', size: 10 });
      expect(small).toMatchObject({ code: 'ARCHIVE', message: 'file "data/small.txt" could not be read while writing the layer (EAGAIN)' });
    } finally {
      closeSync(held);
    }
  });
});

/**
 * A COPY of one directory is walked as its layer is written (`layerEntries()`): a subdirectory is
 * listed only when the writer gets there, which can be after every earlier file was read — a window
 * as long as the attacker's big file takes. Every listing reads through a descriptor of the
 * directory checked to be the one first seen at its path, so a directory swapped in that window
 * (for a symlink to a host directory, or for another directory) is refused and nothing below it is
 * listed from elsewhere.
 */
describe('a directory of the context swapped while the COPY of its parent is walked', () => {
  beforeEach(() => {
    mkdirSync(join(ctx, 'dir', 'z'));
    writeFileSync(join(ctx, 'dir', 'z', 'g.txt'), DECOY);
    mkdirSync(join(outside, 'deep'));
    writeFileSync(join(outside, 'g.txt'), SECRET, { mode: 0o600 });
    writeFileSync(join(outside, 'secret-name.txt'), SECRET, { mode: 0o600 });
  });

  /** Walks `COPY dir /app/` and runs `swap` once the writer has taken `after`. */
  async function walkThenSwap(after: string, swap: () => void): Promise<{ error: unknown; bytes: Buffer }> {
    const planned = await planCopy({ kind: 'COPY', sources: ['dir'], dest: '/app/', workdir: '/', from: BuildContext.open(ctx), hashCache: HashCache.load(), now: 0 });
    async function* gated(): AsyncGenerator<LayerEntry> {
      for (const e of planned.layerEntries()) {
        yield e;
        if (e.path === after) swap();
      }
    }
    const parts: Buffer[] = [];
    try {
      for await (const c of tarStream(gated())) parts.push(c);
    } catch (error) {
      return { error, bytes: Buffer.concat(parts) };
    } finally {
      planned.dispose();
    }
    return { error: undefined, bytes: Buffer.concat(parts) };
  }

  const leaked = (bytes: Buffer): boolean => bytes.includes(Buffer.from('host-secret')) || bytes.includes(Buffer.from('secret-name'));

  it('a subdirectory swapped for a symlink to a host directory after an earlier file was written is refused; no host file or name reaches the layer', async () => {
    const r = await walkThenSwap('app/big.bin', () => {
      renameSync(join(ctx, 'dir', 'z'), join(ctx, 'moved'));
      symlinkSync(outside, join(ctx, 'dir', 'z'));
    });
    expect(r.error).toMatchObject({ code: 'CONTEXT', message: expect.stringContaining('"dir/z" in the build context was replaced while the build read it') });
    expect(leaked(r.bytes)).toBe(false);
  });

  it('a subdirectory swapped for another real directory is refused too (its inode is not the one listed)', async () => {
    const r = await walkThenSwap('app/big.bin', () => {
      renameSync(join(ctx, 'dir', 'z'), join(ctx, 'moved'));
      mkdirSync(join(ctx, 'dir', 'z'));
      writeFileSync(join(ctx, 'dir', 'z', 'secret-name.txt'), 'other\n');
    });
    expect(r.error).toMatchObject({ code: 'CONTEXT', message: expect.stringContaining('"dir/z" in the build context was replaced') });
    expect(leaked(r.bytes)).toBe(false);
  });

  it('a directory above one not yet listed swapped for a symlink is refused when the lower one is listed', () => {
    mkdirSync(join(ctx, 'dir', 'z', 'deep'));
    writeFileSync(join(outside, 'deep', 'secret-name.txt'), SECRET);
    const context = BuildContext.open(ctx);
    expect(context.list('dir/z').names).toEqual(['deep', 'g.txt']);
    renameSync(join(ctx, 'dir', 'z'), join(ctx, 'moved'));
    symlinkSync(outside, join(ctx, 'dir', 'z'));
    expect(() => context.list('dir/z/deep')).toThrow(expect.objectContaining({ code: 'CONTEXT', message: expect.stringContaining('"dir/z/deep" in the build context was replaced') }));
    // a lookup by path below it goes through the same check
    expect(() => context.lstat('dir/z/deep/secret-name.txt')).toThrow(expect.objectContaining({ code: 'CONTEXT' }));
  });

  it('a hash taken for the cache refuses a file reached through a swapped directory, and remembers nothing', () => {
    const context = BuildContext.open(ctx);
    const node = context.lstat('dir/z/g.txt')!;
    const cache = HashCache.load();
    renameSync(join(ctx, 'dir', 'z'), join(ctx, 'moved'));
    symlinkSync(outside, join(ctx, 'dir', 'z'));
    expect(() => cache.fileSha256(node.host!)).toThrow(expect.objectContaining({ code: 'CONTEXT', message: expect.stringContaining('was replaced while the build read it') }));
    expect(cache.has(node.host!)).toBe(false);
  });

  it('an untouched tree is walked whole, and a context named through a symlink is read as its target', async () => {
    const r = await walkThenSwap('app/big.bin', () => {});
    expect(r.error).toBeUndefined();
    expect(r.bytes.includes(Buffer.from('app/z/g.txt'))).toBe(true);
    symlinkSync(ctx, join(t.path, 'ctx-link'));
    expect(BuildContext.open(join(t.path, 'ctx-link')).list('dir').names).toEqual(['big.bin', 'f.txt', 'z']);
  });
});

/**
 * ADD of a context archive reads the archive at planning (is it a tar?) and again when its entries
 * are indexed. Both reads must be of the file that was listed: never through a symlink swapped in,
 * or a directory above it, and never blocking on a FIFO.
 */
describe('an ADD archive swapped after it was listed', () => {
  beforeEach(() => {
    mkdirSync(join(ctx, 'a'));
    mkdirSync(join(t.path, 'tarsrc'));
    writeFileSync(join(t.path, 'tarsrc', 'fine.txt'), 'fine\n');
    execFileSync('tar', ['-cf', join(ctx, 'a', 'x.tar'), '-C', join(t.path, 'tarsrc'), 'fine.txt']);
    mkdirSync(join(t.path, 'evil'));
    writeFileSync(join(t.path, 'evil', 'secret-name.txt'), SECRET);
    execFileSync('tar', ['-cf', join(outside, 'x.tar'), '-C', join(t.path, 'evil'), 'secret-name.txt']);
  });

  async function planAddThenSwap(swap: () => void): Promise<{ error: unknown; names: string[] }> {
    const planned = await planCopy({ kind: 'ADD', sources: ['a/x.tar'], dest: '/out/', workdir: '/', from: BuildContext.open(ctx), hashCache: HashCache.load(), now: 0 });
    try {
      swap();
      try {
        await planned.unpackArchives();
        return { error: undefined, names: planned.entries.map((e) => e.path) };
      } catch (error) {
        return { error, names: [] };
      }
    } finally {
      planned.dispose();
    }
  }

  it('a directory above it swapped for a symlink to a host directory holding another archive is refused; nothing of that archive is unpacked', async () => {
    const r = await planAddThenSwap(() => {
      renameSync(join(ctx, 'a'), join(ctx, 'moved'));
      symlinkSync(outside, join(ctx, 'a'));
    });
    expect(r.error).toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining('was replaced while the build read it') });
    expect(r.names.some((n) => n.includes('secret-name'))).toBe(false);
  });

  it('the archive swapped for a FIFO fails at once instead of blocking the build', async () => {
    const r = await planAddThenSwap(() => {
      rmSync(join(ctx, 'a', 'x.tar'));
      execFileSync('mkfifo', [join(ctx, 'a', 'x.tar')]);
    });
    expect(r.error).toMatchObject({ code: 'ARCHIVE', message: expect.stringContaining('was replaced while the build read it') });
  });

  it('an untouched archive is unpacked from a private copy', async () => {
    const r = await planAddThenSwap(() => {});
    expect(r.error).toBeUndefined();
    expect(r.names).toEqual(['out', 'out/fine.txt']);
  });
});

describe('lookups that are no entry of the context', () => {
  it('"..", "." and "sub/.." are not entries, and a root swapped after it was opened is refused', () => {
    const context = BuildContext.open(ctx);
    expect(context.lstat('..')).toBeUndefined();
    expect(context.lstat('dir/..')).toBeUndefined();
    expect(context.lstat('dir/.')).toBeUndefined();
    expect(context.lstat('dir/f.txt')?.size).toBe(DECOY.length);
    const opened = BuildContext.open(ctx);
    renameSync(ctx, join(t.path, 'ctx-moved'));
    symlinkSync(outside, ctx);
    // not even the root's own metadata comes from its replacement
    expect(() => opened.lstat('')).toThrow(expect.objectContaining({ code: 'CONTEXT', message: expect.stringContaining('"." in the build context was replaced') }));
    expect(() => opened.list('')).toThrow(expect.objectContaining({ code: 'CONTEXT' }));
  });
});
