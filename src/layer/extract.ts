import { createHash } from 'node:crypto';
import { closeSync, constants, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { KilnError } from '../errors/index.js';
import { digestOfHash, type Digest } from '../image/digest.js';
import { hashing, untilAborted, type ByteSource } from './byte-stream.js';
import { mknod, S_IFBLK, S_IFCHR, S_IFIFO } from './device.js';
import { boundedExpansion, openUncompressed } from './decompress.js';
import type { TarHeader } from './tar-format.js';
import { readTar } from './tar-reader.js';
import { isOverlayXattr, OPAQUE_WHITEOUT, OVERLAY_OPAQUE_XATTR, WHITEOUT_PREFIX } from './walk.js';
import { ENOTSUP_ERRNO, EPERM_ERRNO, getXattr, setXattr, XattrError } from './xattr.js';

function unsafe(entry: string, why: string): KilnError {
  return new KilnError('UNSAFE_PATH', `layer entry "${entry}" refused: ${why}`);
}

/**
 * Cleans a tar name into a path relative to the root ("" for the root
 * itself). Refuses rather than repairs: an absolute name or any ".."
 * component is a malformed or hostile layer.
 */
export function cleanEntryName(name: string, entry = name): string {
  if (name.includes('\0')) throw unsafe(entry, 'NUL in path');
  if (name.startsWith('/')) throw unsafe(entry, 'absolute path');
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') throw unsafe(entry, 'path contains ".."');
    parts.push(c);
  }
  return parts.join('/');
}

function exists(path: string): ReturnType<typeof lstatSync> | undefined {
  return lstatSync(path, { throwIfNoEntry: false });
}

/**
 * Extracts into `root`, which is meant to be a fresh snapshot directory (an
 * overlay lowerdir holding this layer alone). Every path is resolved
 * component by component with lstat; nothing is ever created through a
 * symlink, so a layer cannot write outside `root`.
 */
class Extractor {
  private readonly root: string;
  /** Directories already checked to be real directories inside the root. */
  private readonly knownDirs = new Set<string>(['']);
  private readonly dirTimes: Array<{ rel: string; mtime: number; atime: number }> = [];
  /**
   * Directories made or set in this extraction in which a new entry gets exactly what it is made
   * with: the process's own group (the directory has no set-group-ID bit and is of that group, so a
   * `grpid` mount gives no other either) and its mode less the umask (no default ACL). Only there
   * may an entry skip the chown or chmod that would leave it as it is; a directory missing here
   * (one kiln did not make, or one that may pass something on) has every entry's set.
   */
  private readonly plainDirs = new Set<string>();
  /** The owner of what this process creates: its effective ids (Linux's fsuid and fsgid). */
  private readonly creator = { uid: process.geteuid?.() ?? -1, gid: process.getegid?.() ?? -1 };
  /** The bits a new entry's mode loses; undefined when unknown (then every mode is set). */
  private readonly umask = processUmask();

  constructor(root: string) {
    this.root = root;
    const st = exists(root);
    if (st?.isDirectory() && (Number(st.mode) & 0o2000) === 0 && Number(st.gid) === this.creator.gid && !hasDefaultAcl(root)) this.plainDirs.add('');
  }

  /**
   * Whether an entry just created in `dir` already has the owner `h` asks for, so the chown may be
   * skipped (one system call of the five or six each file costs; most layers are all root's).
   */
  private ownedAsCreated(dir: string, h: TarHeader): boolean {
    return h.uid === this.creator.uid && h.gid === this.creator.gid && this.plainDirs.has(dir);
  }

  /**
   * Whether an entry just created in `dir` with mode `h.mode & 0o777` already has `h.mode` (no
   * special bits, nothing the umask took, and no ACL of its own: setting one sets the group bits).
   */
  private modeAsCreated(dir: string, h: TarHeader): boolean {
    return this.umask !== undefined && this.plainDirs.has(dir) && (h.mode & 0o7777) === (h.mode & 0o777 & ~this.umask) && !hasAcl(h);
  }

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  /** Makes sure every component of `dir` is a real directory (creating missing ones) — never a symlink. */
  private ensureDir(dir: string, entry: string, create: boolean): void {
    if (this.knownDirs.has(dir)) return;
    let cur = '';
    for (const c of dir.split('/')) {
      cur = cur === '' ? c : `${cur}/${c}`;
      if (this.knownDirs.has(cur)) continue;
      const st = exists(this.abs(cur));
      if (!st) {
        if (!create) throw unsafe(entry, `"${cur}" does not exist`);
        mkdirSync(this.abs(cur), 0o755);
        // what a directory passes on (its group with the set-group-ID bit, the bit, a default ACL) it passes on to a new directory too
        if (this.plainDirs.has(parentOf(cur))) this.plainDirs.add(cur);
      } else if (st.isSymbolicLink()) {
        throw unsafe(entry, `its parent "${cur}" is a symlink`);
      } else if (!st.isDirectory()) {
        throw new KilnError('ARCHIVE', `layer entry "${entry}": parent "${cur}" is not a directory`);
      }
      this.knownDirs.add(cur);
    }
  }

  /** Removes whatever is at `rel` so a later entry replaces it (tar semantics: the last entry wins). */
  private clear(rel: string, keepDir: boolean): boolean {
    const st = exists(this.abs(rel));
    if (!st) return false;
    if (keepDir && st.isDirectory()) return true;
    rmSync(this.abs(rel), { recursive: true, force: true });
    // What was cached at or beneath it may now be something else; nothing else changed. (Forgetting
    // every directory made a layer repeating one deep name cost each entry a new lstat of every
    // parent: 300 entries of a 1,000-deep path took 19 s.)
    if (st.isDirectory()) {
      const under = `${rel}/`;
      for (const d of this.knownDirs) if (d === rel || d.startsWith(under)) this.knownDirs.delete(d);
      for (const d of this.plainDirs) if (d === rel || d.startsWith(under)) this.plainDirs.delete(d);
    } else {
      this.knownDirs.delete(rel);
    }
    return false;
  }

  /**
   * Creates a regular file at `rel` for writing. O_EXCL first: in a fresh
   * snapshot nothing is there, so the common case costs no lstat; when an
   * earlier entry holds the name, it is removed and the create repeated.
   * O_NOFOLLOW|O_EXCL never follows or reuses what is at the path.
   */
  private createFile(rel: string, path: string, mode: number): number {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    try {
      return openSync(path, flags, mode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    this.clear(rel, false);
    return openSync(path, flags, mode);
  }

  async entry(h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const rel = cleanEntryName(h.name);
    const slash = rel.lastIndexOf('/');
    const dir = slash === -1 ? '' : rel.slice(0, slash);
    const base = slash === -1 ? rel : rel.slice(slash + 1);

    if (rel === '') {
      // The root's own entry ("./"): only its metadata applies.
      if (h.type === 'directory') this.metadata(rel, h, false);
      return;
    }
    this.ensureDir(dir, h.name, true);

    if (base.startsWith(WHITEOUT_PREFIX)) {
      if (base === OPAQUE_WHITEOUT) {
        setXattr(this.abs(dir), OVERLAY_OPAQUE_XATTR, Buffer.from('y'));
        return;
      }
      const hidden = base.slice(WHITEOUT_PREFIX.length);
      if (hidden === '' || hidden === '.' || hidden === '..') throw unsafe(h.name, 'whiteout of an invalid name');
      const target = dir === '' ? hidden : `${dir}/${hidden}`;
      this.clear(target, false);
      // overlayfs's whiteout: a 0:0 character device (what containerd's overlay snapshotter writes).
      mknod(this.abs(target), S_IFCHR, 0, 0);
      lchownSync(this.abs(target), h.uid, h.gid);
      return;
    }

    const path = this.abs(rel);
    switch (h.type) {
      case 'directory': {
        const fresh = !this.clear(rel, true);
        if (fresh) mkdirSync(path, h.mode & 0o777);
        this.knownDirs.add(rel);
        this.metadata(rel, h, fresh, dir);
        return;
      }
      case 'file': {
        // made with its permission bits (inside the store's private tree, so no wider than they end)
        const fd = this.createFile(rel, path, h.mode & 0o777);
        try {
          for await (const chunk of body) {
            let off = 0;
            while (off < chunk.length) off += writeSync(fd, chunk, off, chunk.length - off);
          }
          // Owner before capabilities (a chown drops security.capability) and mode last (a chown
          // clears set-user-ID bits), on the open descriptor: no window where the path could be
          // swapped. Each is skipped when the file already is so as created.
          if (!this.ownedAsCreated(dir, h)) fchownSync(fd, h.uid, h.gid);
          this.xattrs(path, h);
          if (!this.modeAsCreated(dir, h)) fchmodSync(fd, h.mode);
          futimesSync(fd, atimeOf(h), h.mtime);
        } finally {
          closeSync(fd);
        }
        return;
      }
      case 'symlink':
        this.clear(rel, false);
        symlinkSync(h.linkname, path);
        this.metadata(rel, h, true, dir);
        return;
      case 'hardlink': {
        const target = cleanEntryName(h.linkname, h.name);
        if (target === '') throw unsafe(h.name, 'hardlink to the root');
        const tslash = target.lastIndexOf('/');
        this.ensureDir(tslash === -1 ? '' : target.slice(0, tslash), h.name, false);
        const tst = exists(this.abs(target));
        if (!tst) throw new KilnError('ARCHIVE', `layer entry "${h.name}": hardlink target "${h.linkname}" does not exist`);
        if (tst.isDirectory()) throw unsafe(h.name, 'hardlink to a directory');
        if (target === rel) return;
        this.clear(rel, false);
        linkSync(this.abs(target), path); // link(2) does not follow a symlink target
        return; // a hardlink shares the target's inode and metadata
      }
      case 'char':
      case 'block':
      case 'fifo': {
        this.clear(rel, false);
        const kind = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
        mknod(path, kind | (h.mode & 0o777), h.devmajor, h.devminor);
        break;
      }
      default:
        if (h.typeflag === 0x53) throw new KilnError('UNSUPPORTED', `layer entry "${h.name}": GNU sparse files are not supported`);
        return; // other types (volume labels, …) carry nothing to extract
    }
    this.metadata(rel, h);
  }

  private xattrs(path: string, h: TarHeader): void {
    for (const [name, value] of Object.entries(h.xattrs)) {
      // a layer says "opaque" with .wh..wh..opq; overlay markers in its xattrs would steer the overlay mount
      if (isOverlayXattr(name)) continue;
      try {
        setXattr(path, name, value);
      } catch (e) {
        // As Docker and containerd do: an attribute the snapshot's file system
        // cannot hold (ENOTSUP), or one Linux forbids on symlinks (user.* →
        // EPERM), is skipped rather than failing the whole pull.
        if (e instanceof XattrError && (e.errno === ENOTSUP_ERRNO || (h.type === 'symlink' && e.errno === EPERM_ERRNO))) continue;
        throw new KilnError('ARCHIVE', `layer entry "${h.name}": cannot set xattr "${name}": ${(e as Error).message}`, { cause: e });
      }
    }
  }

  /**
   * Owner, xattrs, mode and times of an entry other than a file: owner first (a chown clears
   * set-user-ID bits and capabilities), then xattrs, then mode; times last. `fresh`: made just now
   * in `dir`, so what it already is as made is left alone.
   */
  private metadata(rel: string, h: TarHeader, fresh = false, dir = parentOf(rel)): void {
    const path = this.abs(rel);
    if (!fresh || !this.ownedAsCreated(dir, h)) lchownSync(path, h.uid, h.gid);
    this.xattrs(path, h);
    if (h.type !== 'symlink' && (!fresh || !this.modeAsCreated(dir, h))) chmodSync(path, h.mode);
    if (h.type === 'directory') {
      // its mode is now exactly h.mode and its group h.gid (set here, or made so in a plain directory); a
      // directory that was there already keeps any default ACL it had, and this entry may add one
      const wasPlain = fresh ? this.plainDirs.has(dir) : this.plainDirs.has(rel);
      if (wasPlain && (h.mode & 0o2000) === 0 && h.gid === this.creator.gid && !(DEFAULT_ACL in h.xattrs)) this.plainDirs.add(rel);
      else this.plainDirs.delete(rel);
      // Creating children changes a directory's mtime: set it once they all exist.
      this.dirTimes.push({ rel, mtime: h.mtime, atime: atimeOf(h) });
    } else {
      lutimesSync(path, atimeOf(h), h.mtime);
    }
  }

  /**
   * Sets the directories' times once every entry is in. A later entry may have replaced a parent
   * of a directory recorded earlier with a symlink (`a/`, `a/b/`, then `a` → a host directory),
   * so each path is walked again, component by component without following one: a path that no
   * longer leads through real directories is no longer that directory, and is left alone.
   */
  finish(): void {
    // nothing changes on disk meanwhile but times: each directory is looked at once, not once per directory below it
    const real = new Map<string, boolean>();
    for (let i = this.dirTimes.length - 1; i >= 0; i--) {
      const d = this.dirTimes[i]!;
      if (this.isRealDir(d.rel, real)) lutimesSync(this.abs(d.rel), d.atime, d.mtime);
    }
  }

  /** Whether `rel` and every directory above it are real directories in the root (lstat: a symlink is not). */
  private isRealDir(rel: string, seen: Map<string, boolean>): boolean {
    const known = seen.get(rel);
    if (known !== undefined) return known;
    const real = (rel === '' || this.isRealDir(parentOf(rel), seen)) && exists(this.abs(rel))?.isDirectory() === true;
    seen.set(rel, real);
    return real;
  }
}

const DEFAULT_ACL = 'system.posix_acl_default';

/** Whether the header carries an ACL (setting an access ACL sets the group bits of the mode). */
function hasAcl(h: TarHeader): boolean {
  for (const k in h.xattrs) if (k.startsWith('system.posix_acl_')) return true;
  return false;
}

/** Whether `dir` has a default ACL (what is made in it then ignores the umask); an error counts as yes. */
function hasDefaultAcl(dir: string): boolean {
  try {
    return getXattr(dir, DEFAULT_ACL) !== undefined;
  } catch {
    return true;
  }
}

function parentOf(rel: string): string {
  const slash = rel.lastIndexOf('/');
  return slash === -1 ? '' : rel.slice(0, slash);
}

/** This process's umask (from /proc: Node reads it only by setting it), or null when unreadable; undefined until read. */
let umaskRead: number | null | undefined;

/** Read once, on the first extraction: kiln never sets it, and a build extracts many layers. Undefined when unknown. */
function processUmask(): number | undefined {
  if (umaskRead === undefined) {
    try {
      const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'latin1'));
      umaskRead = m ? parseInt(m[1]!, 8) : null;
    } catch {
      umaskRead = null;
    }
  }
  return umaskRead ?? undefined;
}

function atimeOf(h: TarHeader): number {
  const a = h.pax['atime'];
  const v = a ? Number(a.toString('latin1')) : NaN;
  return Number.isFinite(v) ? v : h.mtime;
}

/**
 * Extracts a layer blob into `targetDir` (a fresh snapshot directory),
 * converting OCI whiteouts to overlay ones: `.wh.NAME` → a 0:0 character
 * device NAME, `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory.
 * Returns the diffID, computed over every decompressed byte.
 */
export async function extractLayer(compressedStream: Readable | AsyncIterable<Uint8Array>, mediaType: string, targetDir: string, compressedSize?: number, signal?: AbortSignal): Promise<{ diffID: Digest }> {
  const hash = createHash('sha256');
  const plain = openUncompressed(compressedStream, mediaType);
  // a layer of a known size expands only so far (see maxExpandedBytes): a 135 KB zstd layer once
  // unpacked 4 GiB of zeros into the store
  const bounded = compressedSize === undefined ? plain : boundedExpansion(plain, compressedSize, `layer of ${compressedSize} bytes`);
  await extractTar(hashing(bounded, hash, { bytes: 0 }), targetDir, signal);
  return { diffID: digestOfHash(hash) };
}

/**
 * Extracts an uncompressed layer tar into `targetDir` as `extractLayer` does,
 * for a caller that hashes the bytes itself (the layer writer, which makes a
 * snapshot from the tar it is writing).
 */
export async function extractTar(tar: ByteSource, targetDir: string, signal?: AbortSignal): Promise<void> {
  mkdirSync(targetDir, { recursive: true });
  const x = new Extractor(targetDir);
  // the build's signal is looked at between chunks, as the layer writer looks at it: a SIGTERM
  // waits neither for the whole layer nor for the rest of one big file in it
  for await (const { header, body } of readTar(signal ? untilAborted(tar, signal) : tar)) await x.entry(header, body);
  x.finish();
}
