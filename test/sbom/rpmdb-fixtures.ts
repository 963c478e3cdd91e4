import { createRequire } from 'node:module';

/** What the tests use of sql.js: make a database, run SQL on it, take its bytes. */
interface SqlDatabase {
  exec(sql: string): Array<{ values: unknown[][] }>;
  run(sql: string, params?: unknown[]): void;
  export(): Uint8Array;
  close(): void;
}
type InitSqlJs = () => Promise<{ Database: new (data?: Uint8Array) => SqlDatabase }>;

/** rpm's schema for the table kiln reads (lib/backend/sqlite.c). */
export const PACKAGES_TABLE = 'CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)';

/**
 * An rpm header blob with NAME, VERSION and RELEASE (string entries), its
 * data padded to `pad` bytes so that a few rows fill an SQLite page.
 */
export function rpmHeader(name: string, version: string, release: string, pad = 0): Buffer {
  const strings = [name, version, release].map((s) => Buffer.from(`${s}\0`));
  const data = Buffer.concat([...strings, Buffer.alloc(pad)]);
  const head = Buffer.alloc(8 + strings.length * 16);
  head.writeUInt32BE(strings.length, 0);
  head.writeUInt32BE(data.length, 4);
  let offset = 0;
  strings.forEach((s, i) => {
    head.writeInt32BE(1000 + i, 8 + i * 16);
    head.writeUInt32BE(6, 8 + i * 16 + 4);
    head.writeInt32BE(offset, 8 + i * 16 + 8);
    head.writeUInt32BE(1, 8 + i * 16 + 12);
    offset += s.length;
  });
  return Buffer.concat([head, data]);
}

/** An SQLite database made by running `sql`, then, for each header, a row of Packages holding it. */
export async function sqliteDb(sql: string, headers: Buffer[] = []): Promise<Buffer> {
  const SQL = await (createRequire(import.meta.url)('sql.js') as InitSqlJs)();
  const db = new SQL.Database();
  try {
    db.exec(sql);
    for (const h of headers) db.run('INSERT INTO Packages (blob) VALUES (?)', [h]);
    return Buffer.from(db.export());
  } finally {
    db.close();
  }
}

/**
 * `bytes` with every child pointer of the Packages table's root (an interior
 * b-tree page) aimed at its first child: each row of that leaf is then reached
 * once per pointer. Throws when the table is too small to have an interior root.
 */
export function shareFirstLeaf(bytes: Buffer, rootPage: number): Buffer {
  const out = Buffer.from(bytes);
  const pageSize = out.readUInt16BE(16);
  const page = (rootPage - 1) * pageSize;
  const header = page + (rootPage === 1 ? 100 : 0);
  if (out[header] !== 0x05) throw new Error('the root page is not an interior table page');
  const cells = out.readUInt16BE(header + 3);
  const first = out.readUInt32BE(page + out.readUInt16BE(header + 12));
  for (let i = 0; i < cells; i++) out.writeUInt32BE(first, page + out.readUInt16BE(header + 12 + i * 2));
  out.writeUInt32BE(first, header + 8);
  return out;
}
