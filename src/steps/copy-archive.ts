import { closeSync, createReadStream, createWriteStream, fstatSync, openSync, readSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError, isKilnError } from '../errors/index.js';
import { decodeArchive, decodeArchiveFile, sniffArchiveCompression, type ArchiveCompression } from '../layer/decompress.js';
import { BLOCK_SIZE, TypeFlag, decodeHeader, isZeroBlock, mergePax, paddingFor, verifyChecksum, type TarHeader } from '../layer/tar-format.js';
import { MAX_META } from '../layer/tar-reader.js';
import { openListed } from '../layer/tar-writer.js';
import type { SourceInode } from '../layer/types.js';
import { cleanPath } from '../context/glob.js';
import { type FsNode, type FsView, sortNames } from '../context/fs-view.js';

export type { ArchiveCompression } from '../layer/decompress.js';
export type { SourceInode } from '../layer/types.js';

/**
 * Whether a file is a tar archive ADD should unpack, decided by content as
 * Docker does: compression by magic bytes, then a tar header (ustar magic or a
 * valid header checksum) in the first decompressed block. Returns undefined
 * for anything else, which ADD then copies as is whatever its name.
 */
export async function detectArchive(file: string, inode?: SourceInode): Promise<ArchiveCompression | undefined> {
  const fd = openArchive(file, inode);
  try {
    const b = Buffer.alloc(6);
    const head = b.subarray(0, readSync(fd, b, 0, b.length, 0));
    const compression = sniffArchiveCompression(head);
    const block = await firstBlock(decodeArchive(fdReader(fd), compression));
    return isTarHeader(block) ? compression : undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * The bytes of the open file `fd` from its start, as a stream that never closes the descriptor (a
 * ReadStream given an fd closes it when destroyed, which the caller's own close would then repeat
 * on a number that may be in use again).
 */
function fdReader(fd: number): Readable {
  let pos = 0;
  return new Readable({
    read() {
      const b = Buffer.allocUnsafe(64 * 1024);
      const n = readSync(fd, b, 0, b.length, pos);
      pos += n;
      this.push(n > 0 ? b.subarray(0, n) : null);
    },
  });
}

/**
 * Opens an archive ADD reads. A file of a tree (`inode` given: the build context, a stage) is opened
 * as the layer writer opens a listed source (openListed): never through a symlink, never blocking on
 * a FIFO, and only the very inode that was listed — one swapped since, or a directory above it, is
 * refused instead of unpacking whatever the path now reaches. A file the user named (a tar context)
 * is opened as named.
 */
function openArchive(file: string, inode: SourceInode | undefined): number {
  if (inode === undefined) return openSync(file, 'r');
  return openListed(file, inode, () => new KilnError('ARCHIVE', `archive "${file}" was replaced while the build read it; nothing was read from it`));
}

/** Copies the open file `fd` whole into the new file `out`, streaming, stopped by `signal` (a 6 GiB tar held the event loop and every signal for 16 s). */
async function copyFd(fd: number, out: string, signal?: AbortSignal): Promise<void> {
  await pipeline(createReadStream('', { fd, autoClose: false, start: 0 }), createWriteStream(out, { flags: 'wx', mode: 0o600 }), ...(signal ? [{ signal }] : []));
}

/** The decompressed byte stream of an archive file, through the one decompressor. */
export function openDecompressed(file: string, compression: ArchiveCompression): Readable {
  return decodeArchive(createReadStream(file), compression);
}

async function firstBlock(s: Readable): Promise<Buffer> {
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

/** A first block that is a tar header: ustar magic, or (old tars) a header checksum that adds up. */
function isTarHeader(b: Buffer): boolean {
  if (b.length < BLOCK_SIZE) return false;
  if (b.toString('latin1', 257, 262) === 'ustar') return true;
  try {
    return b[0] !== 0 && verifyChecksum(b);
  } catch {
    return false; // the checksum field is not a number
  }
}

/**
 * An unpacked archive as a read-only tree. The archive is copied (or
 * decompressed) once, from its checked descriptor, into the staging
 * directory and read in place there: a file's content is a byte range of
 * that tar, which the layer writer streams straight from it. Metadata, owners included, stays in memory. A hardlink
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

  /**
   * Unpacks the archive's index from `file`, checked to be `inode` when given. Its bytes are read
   * once, from that checked descriptor, into the stage directory (decompressed, or copied when
   * plain), and every later read of an entry's content is from that private copy.
   */
  static async unpack(file: string, compression: ArchiveCompression, stageDir: string, label: string, inode?: SourceInode, signal?: AbortSignal): Promise<ArchiveTree> {
    const tarFile = `${stageDir}/archive.tar`;
    const inFd = openArchive(file, inode);
    try {
      if (compression === 'none') await copyFd(inFd, tarFile, signal);
      else await decodeArchiveFile(inFd, compression, tarFile, label, signal);
    } finally {
      closeSync(inFd);
    }
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
    const hdr = Buffer.alloc(BLOCK_SIZE);
    const bad = (why: string): KilnError => new KilnError('ARCHIVE', `cannot unpack ${this.label}: ${why}`);
    // headers are decoded by the layer tar codec; errors name this archive
    const decode = (pax: Record<string, Buffer>, longName?: Buffer, longLink?: Buffer): TarHeader => {
      try {
        return decodeHeader(hdr, pax, longName, longLink);
      } catch (e) {
        throw isKilnError(e) ? bad(e.message.replace(/^invalid tar header for "[^"]*": /, '')) : e;
      }
    };
    let off = 0;
    let longName: Buffer | undefined;
    let longLink: Buffer | undefined;
    let pax: Record<string, Buffer> = {};
    const readData = (start: number, size: number): Buffer => {
      if (size > MAX_META) throw bad(`tar extension header of ${size} bytes is too large`);
      const b = Buffer.alloc(size);
      if (readSync(fd, b, 0, size, start) !== size) throw bad('truncated entry');
      return b;
    };
    while (off + BLOCK_SIZE <= total) {
      readSync(fd, hdr, 0, BLOCK_SIZE, off);
      off += BLOCK_SIZE;
      if (isZeroBlock(hdr)) break;
      const flag = hdr[156]!;
      const isMeta = flag === TypeFlag.paxHeader || flag === TypeFlag.paxGlobal || flag === TypeFlag.gnuLongName || flag === TypeFlag.gnuLongLink;
      // an extension header's own size is its body's; the entry after it takes the PAX size
      const h = isMeta ? decode({}) : decode(pax, longName, longLink);
      const start = off;
      off += h.size + paddingFor(h.size);
      if (start + h.size > total) throw bad('truncated entry');
      if (flag === TypeFlag.paxHeader) {
        pax = mergePax(pax, readData(start, h.size));
        continue;
      }
      // global PAX headers are skipped, as Docker's untar does for ADD
      if (flag === TypeFlag.paxGlobal) continue;
      if (flag === TypeFlag.gnuLongName || flag === TypeFlag.gnuLongLink) {
        const body = readData(start, h.size);
        const nul = body.indexOf(0);
        const value = nul < 0 ? body : body.subarray(0, nul);
        if (flag === TypeFlag.gnuLongName) longName = value;
        else longLink = value;
        continue;
      }
      pax = {};
      longName = undefined;
      longLink = undefined;
      const node: FsNode = { type: 'file', mode: h.mode, uid: h.uid, gid: h.gid, size: 0, mtime: h.mtime };
      const path = safeName(h.name, this.label);
      if (path === '') continue;
      switch (h.type) {
        case 'file':
          this.put(path, { ...node, size: h.size });
          this.ranges.set(path, { start, size: h.size });
          break;
        case 'hardlink': {
          const target = safeName(h.linkname, this.label);
          const t = this.nodes.get(target);
          const range = this.ranges.get(target);
          if (!t || t.type !== 'file' || !range) throw bad(`hardlink "${h.name}" points to a missing file`);
          this.put(path, { ...t });
          this.ranges.set(path, range);
          break;
        }
        case 'symlink':
          this.put(path, { ...node, type: 'symlink', linkname: h.linkname });
          break;
        case 'char':
        case 'block':
          this.put(path, { ...node, type: h.type, devmajor: h.devmajor, devminor: h.devminor });
          break;
        case 'directory':
          this.put(path, { ...node, type: 'directory' });
          break;
        case 'fifo':
          this.put(path, { ...node, type: 'fifo' });
          break;
        default:
          throw bad(`unsupported entry type "${String.fromCharCode(flag)}" for "${h.name}"`);
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
