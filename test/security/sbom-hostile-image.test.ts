import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { KILN_BIN, rebuildIfStale, runKiln } from '../helpers/kiln-cli.js';
import { bench, type Bench } from '../builder/helpers.js';
import { sqliteDb } from '../sbom/rpmdb-fixtures.js';

/**
 * `kiln sbom` of images made to hurt the scanner or the terminal: package
 * names that are escape sequences, an rpm database whose Packages is a view
 * that never ends, a status file of more packages than the limit, a lockfile
 * nested deeper than the call stack. Each ends with a document or a one-line
 * error, and nothing from the image reaches the terminal raw.
 */

const ESC = '\x1b';
const TITLE = `evil${ESC}]0;PWNED${'\x07'}${ESC}[2J${ESC}[31mRED`;
const C1 = 'libc\u009b2J\u202egnp';
const REFS = { text: 'localhost/sec/sbom-text:1', rpm: 'localhost/sec/sbom-rpm-view:1', dpkg: 'localhost/sec/sbom-dpkg-many:1', lock: 'localhost/sec/sbom-lock-deep:1' };

let b: Bench;

/** Builds `ref` FROM scratch with `files` (path → content) as its only layer. */
async function image(ref: string, files: Record<string, string | Buffer>): Promise<void> {
  const ctx = await b.context({ Dockerfile: 'FROM scratch\nCOPY root/ /\n' });
  for (const [name, content] of Object.entries(files)) {
    const p = path.join(ctx, 'root', name);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, content);
  }
  await b.build(ctx, { tags: [ref] });
}

beforeAll(async () => {
  await rebuildIfStale(['cli/main', 'cli/commands/sbom', 'errors/printable', 'sbom/scan', 'sbom/rpm', 'sbom/dpkg', 'sbom/npm', 'sbom/lines']);
  b = await bench();
  await image(REFS.text, {
    'etc/os-release': 'ID=debian\nVERSION_ID=12\n',
    'var/lib/dpkg/status': `Package: ${TITLE}\nVersion: 1.0${ESC}[0m\b\b\b\rfake\nStatus: install ok installed\n\nPackage: ${C1}\nVersion: 1.0\u0085x\nStatus: install ok installed\n\n`,
  });
  // the reviewer's 4 KiB database: a recursive CTE of 10^15 rows behind a view named Packages
  await image(REFS.rpm, {
    'var/lib/rpm/rpmdb.sqlite': await sqliteDb('CREATE VIEW Packages AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 1000000000000000) SELECT max(x) AS hnum, NULL AS blob FROM c'),
  });
  await image(REFS.dpkg, { 'var/lib/dpkg/status': Array.from({ length: 100_001 }, (_, i) => `Package: p${i}\nVersion: 1\n\n`).join('') });
  await image(REFS.lock, { 'app/package-lock.json': `{"lockfileVersion":1,"dependencies":${'{"a":{"version":"1.0.0","dependencies":'.repeat(200_000)}{}${'}}'.repeat(200_000)}}` });
  await b.release();
});
afterAll(async () => b?.cleanup());

function expectNoControls(out: string): void {
  // line breaks and tabs are kiln's own; nothing else below 0x20, no DEL, no C1, no bidi controls
  expect(out).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/);
}

type Doc = { packages: Array<{ name: string; versionInfo: string }> };

describe('kiln sbom: text from the image reaches the terminal escaped', () => {
  test('--format table escapes each field', async () => {
    const r = await runKiln(['--root', b.root, 'sbom', '--format', 'table', REFS.text]);
    expect(r.code, r.stderr).toBe(0);
    expectNoControls(r.stdout);
    expect(r.stdout).toContain('evil\\x1b]0;PWNED\\x07\\x1b[2J\\x1b[31mRED\t1.0\\x1b[0m\\x08\\x08\\x08 fake\t');
    expect(r.stdout).toContain('libc\\x9b2J\\u202egnp\t1.0\\x85x\t');
    // one line per package under the header
    expect(r.stdout.trimEnd().split('\n')).toHaveLength(3);
  });

  test('JSON to a terminal escapes C1 and bidi controls; to a pipe or a file it is the exact document', async () => {
    // script(1) gives kiln a pseudo-terminal as standard output
    const tty = await promisify(execFile)('script', ['-qec', '"$KILN" --root "$ROOT" sbom "$REF"', '/dev/null'], { env: { ...process.env, KILN: KILN_BIN, ROOT: b.root, REF: REFS.text } });
    expectNoControls(tty.stdout.replace(/\r\n/g, '\n'));
    expect(tty.stdout).toContain('"name": "libc\\u009b2J\\u202egnp"');
    const fromTty = JSON.parse(tty.stdout) as Doc;

    const pipe = await runKiln(['--root', b.root, 'sbom', REFS.text]);
    expect(pipe.code, pipe.stderr).toBe(0);
    const doc = JSON.parse(pipe.stdout) as Doc;
    expect(doc.packages.map((p) => p.name).sort()).toEqual([TITLE, C1].sort());
    expect(pipe.stdout).toContain(C1);
    // the same values either way: only how they are written differs
    expect(fromTty.packages).toEqual(doc.packages);

    const out = path.join(b.dir, 'sbom.json');
    const file = await runKiln(['--root', b.root, 'sbom', '-o', out, REFS.text]);
    expect(file.code, file.stderr).toBe(0);
    expect(await readFile(out, 'utf8')).toContain(C1);
  });
});

describe('kiln sbom: hostile package databases end in an error or a document, bounded', () => {
  test('an rpm database whose Packages is a never-ending view is refused before it is queried', async () => {
    const r = await runKiln(['--root', b.root, 'sbom', REFS.rpm]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^kiln: SBOM scan: var\/lib\/rpm\/rpmdb\.sqlite is refused: it holds a view \("Packages"\), which an rpm database never does\n$/);
  });

  test('a status file listing more packages than the limit is one line of error, no document', async () => {
    const r = await runKiln(['--root', b.root, 'sbom', REFS.dpkg]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^kiln: SBOM scan: the image lists more than 100000 packages \(the limit, passed at "var\/lib\/dpkg\/status"\); no partial SBOM is written\n$/);
  });

  test('a v1 lockfile nested 200,000 deep is read (its one package), not a stack overflow', async () => {
    const r = await runKiln(['--root', b.root, 'sbom', '--format', 'table', REFS.lock]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('NAME\tVERSION\tPURL\na\t1.0.0\tpkg:npm/a@1.0.0\n');
  });
});
