import { link, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LayeredFs } from '../../src/context/layered-fs.js';
import { parsePackageLock } from '../../src/sbom/npm.js';
import { parseRpmDb } from '../../src/sbom/rpm.js';
import { DEFAULT_SCAN_LIMITS, scanFileSystem, type ScanLimits } from '../../src/sbom/scan.js';
import { tempDir } from '../helpers/temp-dir.js';
import { PACKAGES_TABLE, rpmHeader, shareFirstLeaf, sqliteDb } from './rpmdb-fixtures.js';

/**
 * The SBOM scan reads files an image's author wrote. Whatever they hold, the
 * scan's work is bounded by its limits — asserted here on what it read and
 * listed, never on how long it took.
 */

let dir: Awaited<ReturnType<typeof tempDir>>;
let n = 0;
beforeAll(async () => {
  dir = await tempDir('kiln-sbom-bounds-');
});
afterAll(async () => {
  await dir.cleanup();
});

/** A one-layer image file system from `files` (path → content; a Buffer with mode 0755 for an executable). */
async function imageFs(files: Record<string, string | Buffer>): Promise<{ root: string; view: LayeredFs }> {
  const root = path.join(dir.path, `root-${n++}`);
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(root, name);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, content, typeof content === 'string' ? {} : { mode: 0o755 });
  }
  return { root, view: new LayeredFs([root]) };
}

const limits = (l: Partial<ScanLimits>): ScanLimits => ({ ...DEFAULT_SCAN_LIMITS, ...l });
const stanzas = (count: number, from = 0): string => Array.from({ length: count }, (_, i) => `Package: p${from + i}\nVersion: 1\nStatus: install ok installed\n\n`).join('');
/** An executable with an ELF magic and Go build info naming one dependency, padded to `size` bytes. */
function goBinary(size: number): Buffer {
  const sentinel = Buffer.alloc(16, 0x30);
  const mod = Buffer.concat([sentinel, Buffer.from('path\texample.com/app\nmod\texample.com/app\tv1.0.0\th1:x\ndep\tgolang.org/x/sys\tv0.1.0\th1:y\n'), sentinel]);
  const header = Buffer.alloc(32);
  Buffer.from('\xff Go buildinf:', 'latin1').copy(header);
  header[14] = 8;
  header[15] = 2;
  const info = Buffer.concat([header, Buffer.from([8]), Buffer.from('go1.22.1'), Buffer.from([mod.length]), mod]);
  const out = Buffer.alloc(size);
  out.write('\x7fELF', 0, 'latin1');
  info.copy(out, size - info.length - 64);
  return out;
}

const opts = { location: 'var/lib/rpm/rpmdb.sqlite', maxPackages: 100 };

describe('npm v1 lockfile', () => {
  it('walks 200,000 nested dependencies without recursion', () => {
    const depth = 200_000;
    let text = '{}';
    for (let i = depth - 1; i >= 0; i--) text = `{"a":{"version":"1.0.${i}","dependencies":${text}}}`;
    const pkgs = [...parsePackageLock(`{"lockfileVersion":1,"dependencies":${text}}`, 'app/package-lock.json')];
    expect(pkgs).toHaveLength(depth);
    // depth first, outermost first, as the recursive walk listed them
    expect(pkgs[0]?.version).toBe('1.0.0');
    expect(pkgs.at(-1)?.version).toBe(`1.0.${depth - 1}`);
  });
});

describe('scan totals: limits across files, not per file', () => {
  it('stops at the package limit with an error naming it, never a partial list', async () => {
    const { view } = await imageFs({ 'var/lib/dpkg/status': stanzas(50) });
    await expect(scanFileSystem(view, limits({ maxPackages: 20 }))).rejects.toThrow(/lists more than 20 packages \(the limit, passed at "var\/lib\/dpkg\/status"\); no partial SBOM/);
    expect((await scanFileSystem(view, limits({ maxPackages: 50 }))).packages).toHaveLength(50);
  });

  it('the default package limit stops a status file of 100,001 made-up packages', async () => {
    const { view } = await imageFs({ 'var/lib/dpkg/status': stanzas(100_001) });
    await expect(scanFileSystem(view)).rejects.toThrow(/lists more than 100000 packages/);
  });

  it('counts the bytes of every database and manifest read: a status.d/ of many files stops at the total', async () => {
    const files: Record<string, string> = {};
    for (let i = 0; i < 100; i++) files[`var/lib/dpkg/status.d/p${i}`] = stanzas(1, i).padEnd(1000, '\n');
    const { view } = await imageFs(files);
    const all = await scanFileSystem(view);
    expect(all.packages).toHaveLength(100);
    expect(all.read).toMatchObject({ textFiles: 100, textBytes: 100 * 1000 });
    await expect(scanFileSystem(view, limits({ maxTotalTextBytes: 50 * 1000 + 500 }))).rejects.toThrow(/package databases and manifests add up to more than 50500 bytes/);
  });

  it('searches a file with many hard links once, and counts the bytes of all executables searched', async () => {
    const size = 64 << 10;
    const { root, view } = await imageFs({ 'bin/app': goBinary(size), 'bin/other': goBinary(size) });
    for (let i = 0; i < 200; i++) await link(path.join(root, 'bin/app'), path.join(root, `bin/link${i}`));
    const r = await scanFileSystem(view);
    expect(r.read).toMatchObject({ binaries: 2, binaryBytes: 2 * size });
    expect(r.packages.map((p) => p.purl).sort()).toEqual(['pkg:golang/example.com/app@v1.0.0', 'pkg:golang/golang.org/x/sys@v0.1.0', 'pkg:golang/stdlib@go1.22.1']);
    await expect(scanFileSystem(view, limits({ maxTotalBinaryBytes: size + 1 }))).rejects.toThrow(/executables add up to more than 65537 bytes/);
  });
});

describe('rpm database: only a plain Packages table is queried, and only when its contents are bounded', () => {
  const headers = [rpmHeader('a', '1', '1'), rpmHeader('b', '2', '1')];

  it('refuses a Packages view (SQL from the image) before running any query on it', async () => {
    // the reviewer's database selected from a recursive CTE of 10^15 rows; 1000 show the shape without the wait
    const recursive = await sqliteDb('CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000) SELECT max(x) AS hnum, NULL AS blob FROM c');
    await expect(parseRpmDb(recursive, opts)).rejects.toThrow(/rpmdb\.sqlite is refused: it holds a view \("Packages"\)/);
    const big = await sqliteDb('CREATE VIEW Packages AS SELECT 1 AS hnum, zeroblob(1000) AS blob');
    await expect(parseRpmDb(big, opts)).rejects.toThrow(/holds a view/);
  });

  it('refuses a trigger, a computed column or a virtual table, and reads the same rows in rpm\'s own table', async () => {
    const plain = await sqliteDb(PACKAGES_TABLE, headers);
    expect((await parseRpmDb(plain, opts)).map((p) => `${p.name} ${p.version}`)).toEqual(['a 1-1', 'b 2-1']);
    const trigger = await sqliteDb(`${PACKAGES_TABLE}; CREATE TABLE t(x); CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; END`, headers);
    await expect(parseRpmDb(trigger, opts)).rejects.toThrow(/holds a trigger \("g"\)/);
    const computed = await sqliteDb('CREATE TABLE Packages (hnum INTEGER PRIMARY KEY, blob BLOB AS (zeroblob(300000000)))');
    await expect(parseRpmDb(computed, opts)).rejects.toThrow(/column "blob" is computed/);
    const virtual = await sqliteDb('CREATE VIRTUAL TABLE Packages USING fts4(hnum, blob)');
    await expect(parseRpmDb(virtual, opts)).rejects.toThrow(/its Packages table is a virtual table/);
  });

  it('counts rows before fetching one: more than the package limit is refused', async () => {
    const many = await sqliteDb(PACKAGES_TABLE, Array.from({ length: 11 }, (_, i) => rpmHeader(`p${i}`, '1', '1')));
    await expect(parseRpmDb(many, { ...opts, maxPackages: 10 })).rejects.toThrow(/has 11 rows, over the 10-package limit/);
    expect(await parseRpmDb(many, { ...opts, maxPackages: 11 })).toHaveLength(11);
  });

  it('refuses a file whose b-tree reaches one page from several parents (rows read again per reference)', async () => {
    const rows = Array.from({ length: 12 }, (_, i) => rpmHeader(`p${i}`, '1', '1', 1000));
    const plain = await sqliteDb(PACKAGES_TABLE, rows);
    expect(await parseRpmDb(plain, opts)).toHaveLength(12);
    // Packages is the first table created: page 2
    const shared = shareFirstLeaf(plain, 2);
    await expect(parseRpmDb(shared, opts)).rejects.toThrow(/quick_check fails/);
  });
});
