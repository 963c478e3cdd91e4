import { spawn } from 'node:child_process';
import { closeSync, createReadStream, createWriteStream, lstatSync, openSync, readSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { KilnError } from '../errors/index.js';
import { cleanPath } from '../context/glob.js';
import type { FsNode, FsView } from '../context/fs-view.js';
import { compareNames } from '../layer/path-order.js';

export type ArchiveCompression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';

/**
 * Whether a file is a tar archive ADD should unpack, decided by content as
 * Docker does: compression by magic bytes, then a tar header (ustar magic or a
 * valid header checksum) in the first decompressed block. Returns undefined
 * for anything else, which ADD then copies as is whatever its name.
 */
export async function detectArchive(file: string): Promise<ArchiveCompression | undefined> {
  const head = readHead(file, 6);
  const compression = compressionOf(head);
  const block = await firstBlock(file, compression);
  return isTarHeader(block) ? compression : undefined;
}

function readHead(file: string, n: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(n);
    const got = readSync(fd, b, 0, n, 0);
    return b.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function compressionOf(h: Buffer): ArchiveCompression {
  if (h.length >= 2 && h[0] === 0x1f && h[1] === 0x8b) return 'gzip';
  if (h.length >= 3 && h.toString('latin1', 0, 3) === 'BZh') return 'bzip2';
  if (h.length >= 6 && h.equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (h.length >= 4 && h.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/** The decompressed byte stream of an archive file. */
export function openDecompressed(file: string, compression: ArchiveCompression): Readable {
  const raw = createReadStream(file);
  if (compression === 'none') return raw;
  if (compression === 'gzip') return raw.pipe(createGunzip());
  // Node 20 has no bzip2/xz/zstd decoders: the system tools are the dependable ones.
  const tool = compression === 'bzip2' ? 'bzip2' : compression;
  const child = spawn(tool, ['-dc'], { stdio: ['pipe', 'pipe', 'ignore'] });
  raw.pipe(child.stdin);
  child.stdin.on('error', () => {});
  child.on('error', (e) => child.stdout.destroy(new KilnError('ARCHIVE', `cannot run ${tool} to decompress: ${e.message}`)));
  child.on('exit', (code) => {
    if (code !== 0) child.stdout.destroy(new KilnError('ARCHIVE', `${tool} failed to decompress (exit ${code})`));
  });
  return child.stdout;
}

async function firstBlock(file: string, compression: ArchiveCompression): Promise<Buffer> {
  const s = openDecompressed(file, compression);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const c of s) {
      chunks.push(c as Buffer);
      total += (c as Buffer).length;
      if (total >= 512) break;
    }
  } catch {
    return Buffer.alloc(0);
  } finally {
    s.destroy();
  }
  return Buffer.concat(chunks).subarray(0, 512);
}

function isTarHeader(b: Buffer): boolean {
  if (b.length < 512) return false;
  if (b.toString('latin1', 257, 262) === 'ustar') return true;
  const stored = parseInt(b.toString('latin1', 148, 156).replace(/\0.*$/, '').trim(), 8);
  if (!Number.isFinite(stored)) return false;
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : b[i]!;
  return sum === stored && b[0] !== 0;
}

/**
 * An unpacked archive as a read-only tree. File bodies are spooled to files in
 * `tmpDir` (the tar is read once, in its own order, while COPY emits entries
 * path-sorted); metadata, owners included, stays in memory. Hardlinks become
 * independent files with the same content. Whiteout names are ordinary files
 * here: ADD does not apply layer semantics.
 */
export class ArchiveTree implements FsView {
  readonly chroot = true;
  private readonly nodes = new Map<string, FsNode>();
  private readonly children = new Map<string, Set<string>>();

  private constructor(readonly label: string) {
    this.nodes.set('', { type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 });
    this.children.set('', new Set());
  }

  static async extract(file: string, compression: ArchiveCompression, tmpDir: string, label: string): Promise<ArchiveTree> {
    const tree = new ArchiveTree(label);
    const ex = tar.extract();
    let n = 0;
    const done = (async () => {
      for await (const entry of ex) {
        const h = entry.header;
        const path = safeName(h.name, label);
        const base: FsNode = {
          type: 'file',
          mode: (h.mode ?? 0o644) & 0o7777,
          uid: h.uid ?? 0,
          gid: h.gid ?? 0,
          size: 0,
          mtime: h.mtime ? h.mtime.getTime() / 1000 : 0,
        };
        if (h.type === 'file' || h.type === 'contiguous-file') {
          const host = `${tmpDir}/${n++}`;
          await pipeline(entry, createWriteStream(host));
          const st = lstatSync(host);
          tree.put(path, { ...base, size: st.size, host: { path: host, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs } });
          continue;
        }
        entry.resume();
        if (path === '') continue;
        if (h.type === 'directory') tree.put(path, { ...base, type: 'directory' });
        else if (h.type === 'symlink') tree.put(path, { ...base, type: 'symlink', linkname: h.linkname ?? '' });
        else if (h.type === 'link') {
          const target = tree.nodes.get(safeName(h.linkname ?? '', label));
          if (!target || target.type !== 'file') throw new KilnError('ARCHIVE', `${label}: hardlink "${h.name}" points to a missing file`);
          tree.put(path, { ...target, mode: target.mode });
        } else if (h.type === 'character-device' || h.type === 'block-device') {
          tree.put(path, { ...base, type: h.type === 'character-device' ? 'char' : 'block', devmajor: h.devmajor ?? 0, devminor: h.devminor ?? 0 });
        } else if (h.type === 'fifo') tree.put(path, { ...base, type: 'fifo' });
      }
    })();
    try {
      await Promise.all([pipeline(openDecompressed(file, compression), ex), done]);
    } catch (e) {
      if (e instanceof KilnError) throw e;
      throw new KilnError('ARCHIVE', `cannot unpack ${label}: ${(e as Error).message}`);
    }
    return tree;
  }

  lstat(path: string): FsNode | undefined {
    return this.nodes.get(path);
  }

  readdir(path: string): string[] {
    return [...(this.children.get(path) ?? [])].sort(compareNames);
  }

  open(path: string): Readable {
    const node = this.nodes.get(path);
    if (!node?.host) throw new KilnError('NOT_FOUND', `"${path}" is not a regular file in ${this.label}`);
    return createReadStream(node.host.path);
  }

  private put(path: string, node: FsNode): void {
    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? '' : path.slice(0, slash);
    const p = this.nodes.get(parent);
    if (!p || p.type !== 'directory') this.put(parent, { type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: node.mtime });
    const old = this.nodes.get(path);
    // A later directory entry updates metadata but keeps the children already seen.
    if (old?.type === 'directory' && node.type !== 'directory') this.children.delete(path);
    this.nodes.set(path, node);
    if (node.type === 'directory' && !this.children.has(path)) this.children.set(path, new Set());
    this.children.get(parent)!.add(path.slice(slash + 1));
  }
}

function safeName(name: string, label: string): string {
  const cleaned = cleanPath(name.replace(/^\/+/, ''));
  if (cleaned === '.') return '';
  if (cleaned === '..' || cleaned.startsWith('../')) throw new KilnError('ARCHIVE', `${label}: entry "${name}" points outside the destination`);
  return cleaned;
}

