import { spawn, spawnSync } from 'node:child_process';
import { closeSync, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { KilnError } from '../errors/index.js';
import { cleanPath } from '../context/glob.js';
import { type FsNode, type FsView, sortNames } from '../context/fs-view.js';

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
 * An unpacked archive as a read-only tree. The archive is decompressed once
 * into the staging directory and read in place: a file's content is a byte
 * range of that tar, so nothing is copied and the layer writer streams it
 * straight from there. Metadata, owners included, stays in memory. A hardlink
 * shares its target's byte range, which `contentKey` exposes so the layer can
 * keep the two linked. Whiteout names are ordinary files here: ADD does not
 * apply layer semantics.
 *
 * Synchronous on purpose: it runs only when a COPY/ADD layer is actually
 * built (a cache miss), from the synchronous `entries` of a planned copy.
 */
export class ArchiveTree implements FsView {
  readonly chroot = true;
  private readonly nodes = new Map<string, FsNode>();
  private readonly children = new Map<string, Set<string>>();
  private readonly ranges = new Map<string, { start: number; size: number }>();
  /** Directories no entry names, only implied by the paths below them. */
  private readonly implied = new Set<string>();

  private constructor(
    readonly label: string,
    private readonly tarFile: string,
  ) {
    this.nodes.set('', { type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 });
    this.children.set('', new Set());
  }

  static extractSync(file: string, compression: ArchiveCompression, stageDir: string, label: string): ArchiveTree {
    const tarFile = compression === 'none' ? file : decompressSync(file, compression, `${stageDir}/archive.tar`, label);
    const tree = new ArchiveTree(label, tarFile);
    const fd = openSync(tarFile, 'r');
    try {
      tree.read(fd, fstatSync(fd).size);
    } finally {
      closeSync(fd);
    }
    return tree;
  }

  private read(fd: number, total: number): void {
    const hdr = Buffer.alloc(512);
    const bad = (why: string): KilnError => new KilnError('ARCHIVE', `cannot unpack ${this.label}: ${why}`);
    let off = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: Record<string, string> = {};
    const readData = (start: number, size: number): Buffer => {
      const b = Buffer.alloc(size);
      if (readSync(fd, b, 0, size, start) !== size) throw bad('truncated entry');
      return b;
    };
    while (off + 512 <= total) {
      readSync(fd, hdr, 0, 512, off);
      off += 512;
      if (hdr.every((b) => b === 0)) break;
      if (!isTarHeader(hdr)) throw bad('invalid tar header');
      const flag = hdr[156] === 0 ? '0' : String.fromCharCode(hdr[156]!);
      let size = tarNumber(hdr, 124, 12);
      if (pax.size !== undefined) size = Number(pax.size);
      // a negative size would move the read offset backwards: the same headers again, forever
      if (!Number.isSafeInteger(size) || size < 0) throw bad(`invalid entry size "${pax.size ?? size}"`);
      const start = off;
      off += Math.ceil(size / 512) * 512;
      if (start + size > total) throw bad('truncated entry');
      if (flag === 'x') {
        pax = parsePax(readData(start, size));
        continue;
      }
      if (flag === 'g') continue;
      if (flag === 'L' || flag === 'K') {
        const text = readData(start, size).toString('utf8').replace(/\0[\s\S]*$/, '');
        if (flag === 'L') longName = text;
        else longLink = text;
        continue;
      }
      const magic = hdr.toString('latin1', 257, 262);
      const prefix = magic === 'ustar' ? cString(hdr, 345, 155) : '';
      let name = cString(hdr, 0, 100);
      if (prefix !== '') name = `${prefix}/${name}`;
      name = pax.path ?? longName ?? name;
      const linkname = pax.linkpath ?? longLink ?? cString(hdr, 157, 100);
      const node: FsNode = {
        type: 'file',
        mode: tarNumber(hdr, 100, 8) & 0o7777,
        uid: pax.uid !== undefined ? Number(pax.uid) : tarNumber(hdr, 108, 8),
        gid: pax.gid !== undefined ? Number(pax.gid) : tarNumber(hdr, 116, 8),
        size: 0,
        mtime: pax.mtime !== undefined ? Number(pax.mtime) : tarNumber(hdr, 136, 12),
      };
      pax = {};
      longName = undefined;
      longLink = undefined;
      const path = safeName(name, this.label);
      if (path === '') continue;
      switch (flag) {
        case '0':
        case '7':
          this.put(path, { ...node, size });
          this.ranges.set(path, { start, size });
          break;
        case '1': {
          const target = safeName(linkname, this.label);
          const t = this.nodes.get(target);
          const range = this.ranges.get(target);
          if (!t || t.type !== 'file' || !range) throw bad(`hardlink "${name}" points to a missing file`);
          this.put(path, { ...t });
          this.ranges.set(path, range);
          break;
        }
        case '2':
          this.put(path, { ...node, type: 'symlink', linkname });
          break;
        case '3':
        case '4':
          this.put(path, { ...node, type: flag === '3' ? 'char' : 'block', devmajor: tarNumber(hdr, 329, 8), devminor: tarNumber(hdr, 337, 8) });
          break;
        case '5':
          this.put(path, { ...node, type: 'directory' });
          break;
        case '6':
          this.put(path, { ...node, type: 'fifo' });
          break;
        default:
          throw bad(`unsupported entry type "${flag}" for "${name}"`);
      }
    }
  }

  lstat(path: string): FsNode | undefined {
    return this.nodes.get(path);
  }

  /** True for a directory the archive has no entry for (untar creates it only when missing). */
  isImplicit(path: string): boolean {
    return this.implied.has(path);
  }

  /** Equal for a regular file and its hardlinks (their shared data offset), undefined for anything else. */
  contentKey(path: string): string | undefined {
    const range = this.ranges.get(path);
    return range === undefined || this.nodes.get(path)?.type !== 'file' ? undefined : String(range.start);
  }

  readdir(path: string): string[] {
    return sortNames([...(this.children.get(path) ?? [])]);
  }

  open(path: string): Readable {
    const range = this.ranges.get(path);
    if (!range) throw new KilnError('NOT_FOUND', `"${path}" is not a regular file in ${this.label}`);
    if (range.size === 0) return Readable.from([]);
    return createReadStream(this.tarFile, { start: range.start, end: range.start + range.size - 1 });
  }

  private put(path: string, node: FsNode): void {
    const slash = path.lastIndexOf('/');
    const parent = slash < 0 ? '' : path.slice(0, slash);
    const p = this.nodes.get(parent);
    if (!p || p.type !== 'directory') {
      this.put(parent, { type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: node.mtime });
      this.implied.add(parent);
    }
    this.implied.delete(path);
    if (node.type !== 'file') this.ranges.delete(path);
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

function decompressSync(file: string, compression: Exclude<ArchiveCompression, 'none'>, out: string, label: string): string {
  const tool = compression === 'zstd' ? 'zstd' : compression;
  const inFd = openSync(file, 'r');
  const outFd = openSync(out, 'w');
  try {
    const r = spawnSync(tool, ['-dc'], { stdio: [inFd, outFd, 'pipe'] });
    if (r.error) throw new KilnError('ARCHIVE', `cannot run ${tool} to unpack ${label}: ${r.error.message}`);
    if (r.status !== 0) throw new KilnError('ARCHIVE', `cannot unpack ${label}: ${tool}: ${r.stderr.toString().trim().split('\n').pop() ?? `exit ${r.status}`}`);
  } finally {
    closeSync(inFd);
    closeSync(outFd);
  }
  return out;
}

function cString(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

/** Octal, or base-256 when the high bit of the first byte is set (GNU, for large ids and sizes). */
function tarNumber(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    let n = b[off]! & 0x7f;
    for (let i = 1; i < len; i++) n = n * 256 + b[off + i]!;
    return n;
  }
  const s = b.toString('latin1', off, off + len).replace(/\0.*$/s, '').trim();
  return s === '' ? 0 : parseInt(s, 8);
}

/** PAX extended header records: "<len> <key>=<value>\n". */
function parsePax(b: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < b.length) {
    const sp = b.indexOf(0x20, i);
    if (sp < 0) break;
    const len = parseInt(b.toString('latin1', i, sp), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const rec = b.toString('utf8', sp + 1, i + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    i += len;
  }
  return out;
}
