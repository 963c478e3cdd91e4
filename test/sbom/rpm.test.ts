import { execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRpmHeader } from '../../src/sbom/rpm.js';
import { runKiln } from '../helpers/kiln-cli.js';
import { bench, type Bench } from '../builder/helpers.js';

type SpdxStatement = { predicate: { packages: Array<{ name: string; versionInfo: string; licenseDeclared?: string; externalRefs: Array<{ referenceLocator: string }> }> } };

/** A noarch rpm made here with rpmbuild from a spec with no files. */
function buildRpm(top: string, name: string, version: string, release: string, epoch: number | undefined, license: string): string {
  const spec = path.join(top, `${name}.spec`);
  execFileSync('sh', ['-c', `mkdir -p "${top}" && cat > "${spec}"`], {
    input: [`Name: ${name}`, `Version: ${version}`, `Release: ${release}`, ...(epoch !== undefined ? [`Epoch: ${epoch}`] : []), 'Summary: kiln test package', `License: ${license}`, 'BuildArch: noarch', '%description', 'test', '%files', ''].join('\n'),
  });
  execFileSync('rpmbuild', ['--quiet', '--define', `_topdir ${top}`, '-bb', spec], { stdio: 'ignore' });
  return path.join(top, 'RPMS', 'noarch', `${name}-${version}-${release}.noarch.rpm`);
}

describe('rpm: the SQLite rpm database (rpmdb.sqlite) of an image, made here with rpm itself', () => {
  let b: Bench;
  let ctx: string;
  let expected: string[];
  const dbpath = '/usr/lib/sysimage/rpm';
  beforeAll(async () => {
    b = await bench();
    await b.release();
    ctx = await b.context({ Dockerfile: 'FROM scratch\nCOPY root/ /\n' });
    const root = path.join(ctx, 'root');
    await mkdir(path.join(root, 'etc'), { recursive: true });
    await writeFile(path.join(root, 'etc', 'os-release'), 'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39\n');
    const top = path.join(b.dir, 'rpmbuild');
    const rpms = [buildRpm(top, 'kiln-hello', '1.2.3', '4.fc39', 2, 'MIT'), buildRpm(top, 'kiln-world', '0.9', '1.fc39', undefined, 'GPL-2.0-or-later')];
    execFileSync('rpm', ['--root', root, '--dbpath', dbpath, '--initdb']);
    execFileSync('rpm', ['--root', root, '--dbpath', dbpath, '-i', '--justdb', '--nodeps', '--ignorearch', '--ignoreos', ...rpms], { stdio: 'ignore' });
    // what rpm itself lists: NAME [EPOCH:]VERSION-RELEASE
    expected = execFileSync('rpm', ['--root', root, '--dbpath', dbpath, '-qa', '--qf', '%{NAME} %|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\\n'], { encoding: 'utf8' }).trim().split('\n').sort();
  });
  afterAll(async () => {
    await b?.cleanup();
  });

  it('the SBOM of the built image lists exactly what rpm -qa lists, with syft-style rpm purls and licences', async () => {
    expect(expected).toEqual(['kiln-hello 2:1.2.3-4.fc39', 'kiln-world 0.9-1.fc39']);
    const out = path.join(b.dir, 'out');
    const r = await runKiln(['--root', b.root, 'build', '--sbom', '-o', `type=local,dest=${out}`, ctx]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(await readFile(path.join(out, 'sbom.spdx.json'), 'utf8')) as SpdxStatement;
    const rpms = doc.predicate.packages.filter((p) => p.externalRefs.some((e) => e.referenceLocator.startsWith('pkg:rpm/')));
    expect(rpms.map((p) => `${p.name} ${p.versionInfo}`).sort()).toEqual(expected);
    const hello = rpms.find((p) => p.name === 'kiln-hello')!;
    expect(hello.externalRefs[0]!.referenceLocator).toBe('pkg:rpm/fedora/kiln-hello@1.2.3-4.fc39?arch=noarch&distro=fedora-39&epoch=2&upstream=kiln-hello-1.2.3-4.fc39.src.rpm');
    expect(hello.licenseDeclared).toBe('MIT');
  });

  it('a hostile header is an error naming it, never a read outside the blob', () => {
    const preamble = (il: number, dl: number) => {
      const b = Buffer.alloc(8);
      b.writeUInt32BE(il, 0);
      b.writeUInt32BE(dl, 4);
      return b;
    };
    expect(() => parseRpmHeader(preamble(0xffffffff, 0), 'db package 1')).toThrow(/db package 1: rpm header claims 4294967295 tags/);
    // one NAME entry whose string offset points past the data
    const entry = Buffer.alloc(16);
    entry.writeInt32BE(1000, 0);
    entry.writeUInt32BE(6, 4);
    entry.writeInt32BE(50, 8);
    entry.writeUInt32BE(1, 12);
    expect(() => parseRpmHeader(Buffer.concat([preamble(1, 4), entry, Buffer.from('abc\0')]), 'db package 2')).toThrow(/string offset 50 is outside its 4 data bytes/);
    // an unterminated string
    entry.writeInt32BE(0, 8);
    expect(() => parseRpmHeader(Buffer.concat([preamble(1, 3), entry, Buffer.from('abc')]), 'db package 3')).toThrow(/not terminated/);
    expect(parseRpmHeader(Buffer.concat([preamble(1, 4), entry, Buffer.from('abc\0')]), 'ok')).toEqual({ name: 'abc' });
  });

  it('a header of 65535 NAME entries all naming one 8 MB string is read once, not once per entry', () => {
    const preamble = Buffer.alloc(8);
    const il = 0xffff;
    const text = Buffer.concat([Buffer.alloc(8 << 20, 'a'), Buffer.from('\0')]);
    preamble.writeUInt32BE(il, 0);
    preamble.writeUInt32BE(text.length, 4);
    const entries = Buffer.alloc(il * 16);
    for (let i = 0; i < il; i++) {
      entries.writeInt32BE(1000, i * 16);
      entries.writeUInt32BE(6, i * 16 + 4);
      entries.writeInt32BE(0, i * 16 + 8);
      entries.writeUInt32BE(1, i * 16 + 12);
    }
    // before: each entry searched and copied the 8 MB again (minutes); the test's bound fails that
    const h = parseRpmHeader(Buffer.concat([preamble, entries, text]), 'db package 4');
    expect(h.name?.length).toBe(8 << 20);
  }, 20_000);
});
