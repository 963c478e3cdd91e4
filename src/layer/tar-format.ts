import { KilnError } from '../errors/index.js';
import type { LayerEntry } from './types.js';

/**
 * ustar header layout and PAX records, written and read byte by byte: kiln
 * sets every field itself because generic packers clamp large ids and
 * re-encode binary xattr values as UTF-8.
 */
export const BLOCK_SIZE = 512;

export const TypeFlag = {
  file: 0x30, // '0'
  hardlink: 0x31,
  symlink: 0x32,
  char: 0x33,
  block: 0x34,
  directory: 0x35,
  fifo: 0x36,
  paxHeader: 0x78, // 'x'
  paxGlobal: 0x67, // 'g'
  gnuLongName: 0x4c, // 'L'
  gnuLongLink: 0x4b, // 'K'
} as const;

const TYPE_BY_ENTRY: Record<LayerEntry['type'], number> = {
  file: TypeFlag.file,
  hardlink: TypeFlag.hardlink,
  symlink: TypeFlag.symlink,
  char: TypeFlag.char,
  block: TypeFlag.block,
  directory: TypeFlag.directory,
  fifo: TypeFlag.fifo,
};

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;
const PAX_XATTR = 'SCHILY.xattr.';

/** The header fields of one entry, after mtime clamping; `name` carries the trailing "/" of directories. */
interface HeaderFields {
  name: Buffer;
  typeflag: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: Buffer;
  devmajor: number;
  devminor: number;
}

/** `len - 1` octal digits, zero-padded, then NUL; `value` fits (the callers check). Digit by digit: no string per field. */
function writeOctal(buf: Buffer, off: number, len: number, value: number): void {
  let v = Math.trunc(value);
  for (let i = off + len - 2; i >= off; i--) {
    buf[i] = 0x30 + (v % 8);
    v = Math.floor(v / 8);
  }
  buf[off + len - 1] = 0;
}

/** GNU base-256, for numbers that only a PAX record can carry portably (kept in the field for old readers). */
function writeBase256(buf: Buffer, off: number, len: number, value: number): void {
  let v = BigInt(Math.trunc(value));
  const neg = v < 0n;
  if (neg) v = (1n << BigInt(8 * len)) + v;
  for (let i = len - 1; i >= 0; i--) {
    buf[off + i] = Number(v & 0xffn);
    v >>= 8n;
  }
  buf[off] = neg ? buf[off]! | 0x80 : 0x80;
}

function writeNumber(buf: Buffer, off: number, len: number, value: number, maxOctal: number): void {
  if (value >= 0 && value <= maxOctal) writeOctal(buf, off, len, value);
  else writeBase256(buf, off, len, value);
}

/** "ustar", NUL, version "00". */
const USTAR_MAGIC = Buffer.from('ustar\x0000', 'latin1');

/** Writes a 512-byte ustar header at `off` in `h` (a fresh block by default). */
function ustarHeader(f: HeaderFields, prefix: Buffer | undefined, h: Buffer = Buffer.alloc(BLOCK_SIZE), off = 0): Buffer {
  if (off !== 0 || h.length !== BLOCK_SIZE) h.fill(0, off, off + BLOCK_SIZE);
  f.name.copy(h, off, 0, Math.min(100, f.name.length));
  writeOctal(h, off + 100, 8, f.mode & 0o7777);
  writeNumber(h, off + 108, 8, f.uid, MAX_OCTAL_7);
  writeNumber(h, off + 116, 8, f.gid, MAX_OCTAL_7);
  writeNumber(h, off + 124, 12, f.size, MAX_OCTAL_11);
  writeNumber(h, off + 136, 12, f.mtime, MAX_OCTAL_11);
  h[off + 156] = f.typeflag;
  f.linkname.copy(h, off + 157, 0, Math.min(100, f.linkname.length));
  USTAR_MAGIC.copy(h, off + 257);
  // uname/gname stay empty: ids are numeric, the build machine's user names mean nothing in the image.
  if (f.typeflag === TypeFlag.char || f.typeflag === TypeFlag.block) {
    writeNumber(h, off + 329, 8, f.devmajor, MAX_OCTAL_7);
    writeNumber(h, off + 337, 8, f.devminor, MAX_OCTAL_7);
  }
  if (prefix) prefix.copy(h, off + 345, 0, Math.min(155, prefix.length));
  h.fill(0x20, off + 148, off + 156);
  // The block was zeroed, so only the ranges written above add to the checksum: names, the numeric
  // fields and magic, the device numbers and the prefix (a third of the block for a short name).
  let sum = sumBytes(h, off, off + Math.min(100, f.name.length)) + sumBytes(h, off + 100, off + 157 + Math.min(100, f.linkname.length));
  sum += sumBytes(h, off + 257, off + 265) + sumBytes(h, off + 329, off + 345 + (prefix ? Math.min(155, prefix.length) : 0));
  writeOctal(h, off + 148, 7, sum);
  h[off + 155] = 0x20;
  return h;
}

function sumBytes(h: Buffer, from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) sum += h[i]!;
  return sum;
}

/** Splits a name into ustar prefix + name when it does not fit in 100 bytes; undefined when it cannot. */
function splitUstarName(name: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  if (name.length > 256) return undefined;
  // The slash that separates them is dropped, so look for one with ≤155 bytes before and ≤100 after.
  const last = Math.min(155, name.length - 1);
  for (let i = last; i >= name.length - 101 && i > 0; i--) {
    if (name[i] === 0x2f) {
      const rest = name.subarray(i + 1);
      if (rest.length === 0 || rest.length > 100) return undefined;
      return { prefix: name.subarray(0, i), name: rest };
    }
  }
  return undefined;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.byteLength(key) + value.length + 3; // ' ' '=' '\n'
  let len = body + 1;
  while (String(len).length + body !== len) len = body + String(len).length;
  const out = Buffer.allocUnsafe(len);
  let o = out.write(`${len} ${key}=`, 0, 'utf8');
  o += value.copy(out, o);
  out[o] = 0x0a;
  return out;
}

function padded(n: number): number {
  return (BLOCK_SIZE - (n % BLOCK_SIZE)) % BLOCK_SIZE;
}

interface HeaderParts {
  fields: HeaderFields;
  prefix: Buffer | undefined;
  /** PAX records; empty when plain ustar says it all (the common case). */
  records: Buffer[];
  nameStr: string;
}

function headerParts(e: LayerEntry, mtime: number): HeaderParts {
  const nameStr = e.type === 'directory' ? `${e.path}/` : e.path;
  const name = Buffer.from(nameStr, 'utf8');
  const linkname = e.linkname === undefined ? EMPTY : Buffer.from(e.linkname, 'utf8');
  const size = e.type === 'file' ? (e.size ?? 0) : 0;
  const seconds = Math.floor(mtime);
  const fields: HeaderFields = {
    name,
    typeflag: TYPE_BY_ENTRY[e.type],
    mode: e.mode,
    uid: e.uid,
    gid: e.gid,
    size,
    mtime: seconds,
    linkname,
    devmajor: e.devmajor ?? 0,
    devminor: e.devminor ?? 0,
  };
  const records: Buffer[] = [];
  let prefix: Buffer | undefined;
  if (name.length > 100) {
    const split = splitUstarName(name);
    if (split) {
      prefix = split.prefix;
      fields.name = split.name;
    } else {
      records.push(paxRecord('path', name));
    }
  }
  if (linkname.length > 100) records.push(paxRecord('linkpath', linkname));
  if (size > MAX_OCTAL_11) records.push(paxRecord('size', Buffer.from(String(size))));
  if (e.uid > MAX_OCTAL_7) records.push(paxRecord('uid', Buffer.from(String(e.uid))));
  if (e.gid > MAX_OCTAL_7) records.push(paxRecord('gid', Buffer.from(String(e.gid))));
  if (seconds < 0 || seconds > MAX_OCTAL_11) records.push(paxRecord('mtime', Buffer.from(String(seconds))));
  if (e.xattrs) {
    const names = Object.keys(e.xattrs).sort(comparePlain);
    for (const k of names) records.push(paxRecord(PAX_XATTR + k, Buffer.from(e.xattrs[k]!)));
  }
  return { fields, prefix, records, nameStr };
}

const EMPTY = Buffer.alloc(0);

/**
 * Encodes the header block(s) of one entry: an optional PAX extended header
 * (long names and link names, ids over 2097151, sizes over 8 GiB, negative
 * times, xattrs), then the ustar header. `mtime` is already clamped.
 */
export function encodeHeader(e: LayerEntry, mtime: number): Buffer {
  const { fields, prefix, records, nameStr } = headerParts(e, mtime);
  const header = ustarHeader(fields, prefix);
  if (records.length === 0) return header;

  const pax = Buffer.concat(records);
  const base = nameStr.replace(/\/$/, '').split('/').pop() ?? '';
  const paxName = Buffer.from(`PaxHeaders.0/${base}`, 'utf8').subarray(0, 100);
  const paxHeader = ustarHeader(
    { name: paxName, typeflag: TypeFlag.paxHeader, mode: 0o644, uid: 0, gid: 0, size: pax.length, mtime: 0, linkname: EMPTY, devmajor: 0, devminor: 0 },
    undefined,
  );
  return Buffer.concat([paxHeader, pax, Buffer.alloc(padded(pax.length)), header]);
}

/**
 * Writes the header straight into `out` at `off` when a single ustar block
 * is enough (returns true); otherwise writes nothing and returns false (the
 * caller then uses `encodeHeader`). Saves an allocation and a copy per entry.
 */
export function encodeHeaderInto(e: LayerEntry, mtime: number, out: Buffer, off: number): boolean {
  const { fields, prefix, records } = headerParts(e, mtime);
  if (records.length > 0) return false;
  ustarHeader(fields, prefix, out, off);
  return true;
}

function comparePlain(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function paddingFor(size: number): number {
  return padded(size);
}

/** The two zero blocks that end an archive. */
export const END_OF_ARCHIVE = Buffer.alloc(2 * BLOCK_SIZE);

// ---------------------------------------------------------------------------
// Reading

/** One header as read from a tar, after applying PAX and GNU long-name records. */
export interface TarHeader {
  /** Name as stored (a directory keeps its trailing "/"). */
  name: string;
  typeflag: number;
  type: LayerEntry['type'] | 'other';
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch; fractional when a PAX record says so. */
  mtime: number;
  linkname: string;
  devmajor: number;
  devminor: number;
  /** Binary-safe: SCHILY.xattr.* values exactly as stored. */
  xattrs: Record<string, Buffer>;
  /** Every PAX record of the entry (raw values). */
  pax: Record<string, Buffer>;
}

function readString(b: Buffer, off: number, len: number): Buffer {
  const end = b.indexOf(0, off);
  return b.subarray(off, end === -1 || end > off + len ? off + len : end);
}

function readNumber(b: Buffer, off: number, len: number): number {
  if (b[off]! & 0x80) {
    let v = BigInt(b[off]! & 0x7f);
    const neg = (b[off]! & 0x40) !== 0;
    for (let i = 1; i < len; i++) v = (v << 8n) | BigInt(b[off + i]!);
    if (neg) v -= 1n << BigInt(8 * len - 1);
    return Number(v);
  }
  const s = b.toString('latin1', off, off + len).replace(/[\0 ]+$/g, '').trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new KilnError('ARCHIVE', `invalid tar header: bad numeric field "${s}"`);
  return parseInt(s, 8);
}

export function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK_SIZE; i++) if (b[i] !== 0) return false;
  return true;
}

export function verifyChecksum(b: Buffer): boolean {
  const stored = readNumber(b, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : b[i]!;
    unsigned += c;
    signed += c > 127 ? c - 256 : c;
  }
  return stored === unsigned || stored === signed;
}

function typeOf(flag: number): TarHeader['type'] {
  switch (flag) {
    case 0:
    case TypeFlag.file:
    case 0x37: // contiguous file
      return 'file';
    case TypeFlag.hardlink:
      return 'hardlink';
    case TypeFlag.symlink:
      return 'symlink';
    case TypeFlag.char:
      return 'char';
    case TypeFlag.block:
      return 'block';
    case TypeFlag.directory:
      return 'directory';
    case TypeFlag.fifo:
      return 'fifo';
    default:
      return 'other';
  }
}

/** Parses a ustar/GNU header block; `pax` and `longName`/`longLink` come from preceding extension entries. */
export function decodeHeader(b: Buffer, pax: Record<string, Buffer>, longName?: Buffer, longLink?: Buffer): TarHeader {
  if (!verifyChecksum(b)) throw new KilnError('ARCHIVE', 'invalid tar header: checksum mismatch');
  const typeflag = b[156]!;
  let nameBuf = readString(b, 0, 100);
  const magic = b.toString('latin1', 257, 263);
  if (magic === 'ustar\0' || magic === 'ustar ') {
    const prefix = magic === 'ustar\0' ? readString(b, 345, 155) : Buffer.alloc(0);
    if (prefix.length > 0) nameBuf = Buffer.concat([prefix, Buffer.from('/'), nameBuf]);
  }
  let name = (longName ?? nameBuf).toString('utf8');
  let linkname = (longLink ?? readString(b, 157, 100)).toString('utf8');
  let uid = readNumber(b, 108, 8);
  let gid = readNumber(b, 116, 8);
  let size = readNumber(b, 124, 12);
  let mtime = readNumber(b, 136, 12);
  const xattrs: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(pax)) {
    switch (k) {
      case 'path':
        name = v.toString('utf8');
        break;
      case 'linkpath':
        linkname = v.toString('utf8');
        break;
      case 'uid':
        uid = Number(v.toString('latin1'));
        break;
      case 'gid':
        gid = Number(v.toString('latin1'));
        break;
      case 'size':
        size = Number(v.toString('latin1'));
        break;
      case 'mtime':
        mtime = Number(v.toString('latin1'));
        break;
      default:
        if (k.startsWith(PAX_XATTR)) xattrs[k.slice(PAX_XATTR.length)] = v;
    }
  }
  // a negative or fractional size would move a reader's offset to the middle of a block, or backwards through the same headers
  if (!Number.isSafeInteger(size) || size < 0) throw new KilnError('ARCHIVE', `invalid tar header for "${name}": invalid entry size "${pax['size']?.toString('latin1') ?? size}"`);
  if (![uid, gid, mtime].every(Number.isFinite)) throw new KilnError('ARCHIVE', `invalid tar header for "${name}": bad PAX number`);
  const type = typeOf(typeflag);
  return {
    name,
    typeflag,
    type,
    mode: readNumber(b, 100, 8) & 0o7777,
    uid,
    gid,
    // Only regular files and unknown types carry data; a hardlink's size field is informational.
    size: type === 'file' || type === 'other' ? size : 0,
    mtime,
    linkname,
    devmajor: type === 'char' || type === 'block' ? readNumber(b, 329, 8) : 0,
    devminor: type === 'char' || type === 'block' ? readNumber(b, 337, 8) : 0,
    xattrs,
    pax,
  };
}

/** Parses the body of a PAX extended header; values stay raw bytes (xattrs are binary). */
/**
 * The most PAX extension data one entry may carry, its own headers and the global ones before it
 * together: bytes of keys and values, and keys. Each header is bounded on its own (MAX_META), but a
 * tar can repeat them: 128 global headers of 16 MiB, 2 MB as gzip, once took 2.2 GB of memory, since
 * global headers add up for the rest of the archive and consecutive local ones for the next entry.
 */
export const MAX_PAX_BYTES = 16 << 20;
/** Far more than an entry's own (path, times, owners, a few xattrs): every entry after a global header copies its records. */
export const MAX_PAX_KEYS = 256;

/** `base` with the records of the PAX header `body` over it, refused past MAX_PAX_BYTES or MAX_PAX_KEYS with `extra` counted in. */
export function mergePax(base: Record<string, Buffer> | undefined, body: Buffer, extra?: Record<string, Buffer>): Record<string, Buffer> {
  const merged = { ...base, ...parsePax(body) };
  let bytes = 0;
  let keys = 0;
  for (const rec of extra ? [merged, extra] : [merged]) {
    for (const [k, v] of Object.entries(rec)) {
      bytes += k.length + v.length;
      keys++;
    }
  }
  if (bytes > MAX_PAX_BYTES || keys > MAX_PAX_KEYS) {
    throw new KilnError('ARCHIVE', `tar PAX extension headers hold more than ${MAX_PAX_BYTES} bytes or ${MAX_PAX_KEYS} keys for one entry`);
  }
  return merged;
}

export function parsePax(body: Buffer): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  let off = 0;
  while (off < body.length) {
    if (body[off] === 0) break;
    const sp = body.indexOf(0x20, off);
    if (sp === -1) throw new KilnError('ARCHIVE', 'invalid PAX header: record without length');
    const len = Number(body.toString('latin1', off, sp));
    if (!Number.isInteger(len) || len <= 0 || off + len > body.length) throw new KilnError('ARCHIVE', 'invalid PAX header: bad record length');
    const rec = body.subarray(sp + 1, off + len - 1); // drop trailing '\n'
    const eq = rec.indexOf(0x3d);
    if (eq === -1) throw new KilnError('ARCHIVE', 'invalid PAX header: record without "="');
    out[rec.toString('utf8', 0, eq)] = Buffer.from(rec.subarray(eq + 1));
    off += len;
  }
  return out;
}
