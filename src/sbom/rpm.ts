import { createRequire } from 'node:module';
import { KilnError } from '../errors/index.js';
import { purl } from './purl.js';
import type { FoundPackage } from './types.js';

/** What kiln uses of sql.js (SQLite compiled to WebAssembly): open a database from bytes, run queries on it. */
interface SqlDatabase {
  exec(sql: string): Array<{ columns: string[]; values: unknown[][] }>;
  close(): void;
}
interface SqlJs {
  Database: new (data: Uint8Array) => SqlDatabase;
}
type InitSqlJs = () => Promise<SqlJs>;

let sqlJs: Promise<SqlJs> | undefined;
/** Loaded on the first rpm database only: most images have none, and the WebAssembly module is 600 kB. */
function loadSqlJs(): Promise<SqlJs> {
  sqlJs ??= (createRequire(import.meta.url)('sql.js') as InitSqlJs)();
  return sqlJs;
}

// header tags (rpmtag.h) and the value types kiln reads
const TAG = { name: 1000, version: 1001, release: 1002, epoch: 1003, license: 1014, vendor: 1011, arch: 1022, sourceRpm: 1044 } as const;
const TYPE_INT32 = 4;
const TYPE_STRING = 6;
const TYPE_I18NSTRING = 9;
/** rpm's own limits for one header (rpmlib's hdrchkTags / hdrchkData). */
const MAX_TAGS = 0xffff;
const MAX_DATA = 256 << 20;

export interface RpmHeader {
  name?: string | undefined;
  version?: string | undefined;
  release?: string | undefined;
  epoch?: number | undefined;
  arch?: string | undefined;
  license?: string | undefined;
  vendor?: string | undefined;
  sourceRpm?: string | undefined;
}

/**
 * One header blob as rpm stores it in its database: a count of index entries
 * and of data bytes, the entries (tag, type, offset, count; big-endian), then
 * the data. Every offset is checked against the blob: a hostile image gets an
 * error, never a read outside it.
 */
export function parseRpmHeader(blob: Uint8Array, where: string): RpmHeader {
  const bad = (why: string) => new KilnError('UNSUPPORTED', `SBOM scan: ${where}: rpm header ${why}`);
  if (blob.length < 8) throw bad('is shorter than its 8-byte preamble');
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const il = view.getUint32(0);
  const dl = view.getUint32(4);
  if (il > MAX_TAGS || dl > MAX_DATA || 8 + il * 16 + dl > blob.length) throw bad(`claims ${il} tags and ${dl} data bytes, more than its ${blob.length} bytes`);
  const dataStart = 8 + il * 16;
  const data = blob.subarray(dataStart, dataStart + dl);
  const string = (offset: number): string => {
    if (offset < 0 || offset >= dl) throw bad(`string offset ${offset} is outside its ${dl} data bytes`);
    const end = data.indexOf(0, offset);
    if (end < 0) throw bad('string is not terminated inside its data');
    return Buffer.from(data.subarray(offset, end)).toString('utf8');
  };
  const out: RpmHeader = {};
  for (let i = 0; i < il; i++) {
    const e = 8 + i * 16;
    const tag = view.getInt32(e);
    const type = view.getUint32(e + 4);
    const offset = view.getInt32(e + 8);
    const count = view.getUint32(e + 12);
    const text = () => (type === TYPE_STRING || (type === TYPE_I18NSTRING && count > 0) ? string(offset) : undefined);
    switch (tag) {
      // the first entry of a tag counts (as rpm's headerGet), and a field once read is never
      // searched again: 65535 entries naming one long string would cost entries × data bytes
      case TAG.name: out.name ??= text(); break;
      case TAG.version: out.version ??= text(); break;
      case TAG.release: out.release ??= text(); break;
      case TAG.arch: out.arch ??= text(); break;
      case TAG.license: out.license ??= text(); break;
      case TAG.vendor: out.vendor ??= text(); break;
      case TAG.sourceRpm: out.sourceRpm ??= text(); break;
      case TAG.epoch:
        if (out.epoch === undefined && type === TYPE_INT32 && count >= 1) {
          if (offset < 0 || offset + 4 > dl) throw bad(`epoch offset ${offset} is outside its data`);
          out.epoch = view.getUint32(dataStart + offset);
        }
        break;
      default:
    }
  }
  return out;
}

/** Room on SQLite's heap besides the database's own size: its page cache (2 MB by default), quick_check's page map, one statement. */
const HEAP_HEADROOM = 32 << 20;

/** The rows of the (one) statement's result, as sql.js returns them; none when it has no rows. */
function rowsOf(result: Array<{ values: unknown[][] }>): unknown[][] {
  return result[0]?.values ?? [];
}

/**
 * Checks, before any query on it, that `Packages` is what rpm creates — a
 * plain table — and that reading it is bounded by the database's size. The
 * file is the image's: a `Packages` view over a recursive query ran for ever,
 * one selecting zeroblob(300000000) took 2 GB, and rows may share pages in a
 * hand-made file. Throws a KilnError saying why the database is refused.
 */
function checkRpmDb(db: SqlDatabase, size: number, maxPackages: number, location: string): void {
  const refuse = (why: string) => new KilnError('UNSUPPORTED', `SBOM scan: ${location} is refused: ${why}`);
  // rpm's schema has tables and indexes only; a view or trigger anywhere would be SQL from the image run by a
  // query, and a virtual table (rootpage 0) would run a module's code, so none is accepted
  const schema = rowsOf(db.exec('SELECT type, name, rootpage FROM sqlite_master'));
  const foreign = schema.find(([type]) => type !== 'table' && type !== 'index');
  if (foreign) throw refuse(`it holds a ${String(foreign[0])} ("${String(foreign[1])}"), which an rpm database never does`);
  const table = schema.find(([type, name]) => type === 'table' && typeof name === 'string' && name.toLowerCase() === 'packages');
  if (!table) throw refuse('it has no Packages table');
  if (typeof table[2] !== 'number' || table[2] <= 0) throw refuse('its Packages table is a virtual table');
  // generated columns (hidden 2 or 3) are expressions evaluated on every read
  const columns = rowsOf(db.exec("SELECT name, hidden FROM pragma_table_xinfo('Packages')"));
  const computed = columns.find(([, hidden]) => hidden !== 0);
  if (computed) throw refuse(`its Packages column "${String(computed[0])}" is computed, not stored`);
  for (const need of ['hnum', 'blob']) if (!columns.some(([name]) => typeof name === 'string' && name.toLowerCase() === need)) throw refuse(`its Packages table has no ${need} column`);
  // a b-tree page reached from two parents is read again through each: a few such pages make a plain
  // SELECT exponential. quick_check walks the file once, marking pages, and reports the second reference
  const check = rowsOf(db.exec('PRAGMA quick_check(1)'))[0]?.[0];
  if (check !== 'ok') throw refuse(`SQLite's quick_check fails (${String(check)})`);
  // length() reads a blob's size from its row header, not the blob: counted before a byte of one is fetched
  const [count, total] = rowsOf(db.exec("SELECT count(*), total(iif(typeof(blob) = 'blob', length(blob), 0)) FROM Packages"))[0] ?? [];
  if (typeof count !== 'number' || count > maxPackages) throw refuse(`its Packages table has ${String(count)} rows, over the ${maxPackages}-package limit`);
  // stored blobs cannot add up to more than the file holds; more means rows share pages
  if (typeof total !== 'number' || total > size) throw refuse(`its package headers add up to ${String(total)} bytes, more than the ${size}-byte file holds`);
}

/**
 * rpm's SQLite database (`var/lib/rpm/rpmdb.sqlite`, rpm ≥ 4.16: Fedora ≥ 33,
 * RHEL/UBI ≥ 9, openSUSE since 2021): one header blob per package in the
 * `Packages` table, read with SQLite itself (sql.js) from the bytes, never
 * from the image's path, and only once checkRpmDb has found the table plain
 * and its contents bounded. Versions read as rpm prints them, `[EPOCH:]VERSION-RELEASE`;
 * the purl is syft's: `pkg:rpm/<distro id>/NAME@VERSION-RELEASE?arch=…&epoch=…&upstream=<source rpm>&distro=…`.
 */
export async function parseRpmDb(bytes: Uint8Array, opts: { location: string; maxPackages: number; distro?: string; namespace?: string }): Promise<FoundPackage[]> {
  // SQLite's header says WAL mode (bytes 18-19 = 2); an in-memory copy is opened in rollback mode, as the
  // database is read only and rpm leaves an image's write-ahead log checkpointed and empty
  const copy = new Uint8Array(bytes);
  if (copy.length >= 100 && copy[18] === 2 && copy[19] === 2) copy[18] = copy[19] = 1;
  const SQL = await loadSqlJs();
  let db: SqlDatabase;
  let rows: unknown[][];
  try {
    db = new SQL.Database(copy);
  } catch (e) {
    throw new KilnError('UNSUPPORTED', `SBOM scan: ${opts.location} is not an SQLite database (${(e as Error).message})`);
  }
  try {
    try {
      // a ceiling on SQLite's heap (sqlite3_hard_heap_limit64) in case a check misses something: a query
      // needing more fails with "out of memory" instead of growing the WebAssembly memory to gigabytes
      db.exec(`PRAGMA hard_heap_limit = ${copy.length + HEAP_HEADROOM}`);
      checkRpmDb(db, copy.length, opts.maxPackages, opts.location);
    } catch (e) {
      if (e instanceof KilnError) throw e;
      throw new KilnError('UNSUPPORTED', `SBOM scan: ${opts.location} is refused: its schema cannot be read (${(e as Error).message})`);
    }
    try {
      rows = rowsOf(db.exec("SELECT hnum, blob FROM Packages WHERE typeof(blob) = 'blob' ORDER BY hnum"));
    } catch (e) {
      throw new KilnError('UNSUPPORTED', `SBOM scan: ${opts.location} has no readable Packages table (${(e as Error).message})`);
    }
  } finally {
    db.close();
  }
  const pkgs: FoundPackage[] = [];
  for (const [hnum, blob] of rows) {
    if (!(blob instanceof Uint8Array)) continue;
    const h = parseRpmHeader(blob, `${opts.location} package ${String(hnum)}`);
    // gpg-pubkey entries are keys rpm imported, not software
    if (!h.name || !h.version || h.name === 'gpg-pubkey') continue;
    const vr = h.release ? `${h.version}-${h.release}` : h.version;
    const pkg: FoundPackage = {
      kind: 'rpm',
      name: h.name,
      version: h.epoch !== undefined ? `${h.epoch}:${vr}` : vr,
      purl: purl({
        type: 'rpm',
        ...(opts.namespace ? { namespace: opts.namespace } : {}),
        name: h.name,
        version: vr,
        qualifiers: { arch: h.arch, epoch: h.epoch !== undefined ? String(h.epoch) : undefined, upstream: h.sourceRpm, distro: opts.distro },
      }),
      location: opts.location,
    };
    if (h.arch) pkg.arch = h.arch;
    if (h.license) pkg.license = h.license;
    if (h.vendor) pkg.supplier = h.vendor;
    pkgs.push(pkg);
  }
  return pkgs;
}
