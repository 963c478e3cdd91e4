import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseApkInstalled } from '../../src/sbom/apk.js';
import { parseDpkgStatus } from '../../src/sbom/dpkg.js';
import { decodeBuildInfo, goPackages, readGoBuildInfo } from '../../src/sbom/go-buildinfo.js';
import { parsePackageJson, parsePackageLock } from '../../src/sbom/npm.js';
import { parseOsRelease } from '../../src/sbom/os-release.js';
import { purl } from '../../src/sbom/purl.js';
import { parsePythonMetadata } from '../../src/sbom/python.js';
import { spdxDocument, spdxLicense } from '../../src/sbom/spdx.js';

describe('package URLs (purl-spec examples)', () => {
  it('encodes type, namespace, version and sorted qualifiers as the spec does', () => {
    expect(purl({ type: 'deb', namespace: 'debian', name: 'curl', version: '7.50.3-1', qualifiers: { distro: 'jessie', arch: 'i386' } })).toBe('pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=jessie');
    expect(purl({ type: 'npm', namespace: '@angular', name: 'animation', version: '12.3.1' })).toBe('pkg:npm/%40angular/animation@12.3.1');
    expect(purl({ type: 'golang', namespace: 'google.golang.org', name: 'genproto', version: 'v0.0.0-2017' })).toBe('pkg:golang/google.golang.org/genproto@v0.0.0-2017');
    // an epoch's colon stays literal, a plus is escaped
    expect(purl({ type: 'deb', namespace: 'debian', name: 'libc6', version: '1:2.36+x' })).toBe('pkg:deb/debian/libc6@1:2.36%2Bx');
  });
});

describe('dpkg status', () => {
  it('lists exactly the packages dpkg itself reports installed on this Debian machine', () => {
    const text = readFileSync('/var/lib/dpkg/status', 'utf8');
    const pkgs = [...parseDpkgStatus(text, { location: 'var/lib/dpkg/status', distro: 'debian-12' })];
    const expected = execFileSync('dpkg-query', ['-W', '-f', '${db:Status-Status}\t${Package}\t${Version}\t${Architecture}\n'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith('installed\t'))
      .map((l) => l.split('\t').slice(1).join('\t'))
      .sort();
    expect(pkgs.map((p) => `${p.name}\t${p.version}\t${p.arch}`).sort()).toEqual(expected);
    const libc = pkgs.find((p) => p.name === 'libc6');
    expect(libc?.purl).toMatch(/^pkg:deb\/debian\/libc6@[^?]+\?arch=amd64&distro=debian-12/);
  });

  it('skips removed packages that only keep their config files', () => {
    const text = 'Package: a\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: b\nStatus: install ok installed\nVersion: 2\nArchitecture: all\nDescription: x\n continued line\n';
    expect([...parseDpkgStatus(text, { location: 's' })].map((p) => p.name)).toEqual(['b']);
  });
});

describe('other package databases', () => {
  it('apk installed database: name, version, arch, licence, origin', () => {
    const text = 'C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\nm:Maintainer <m@example.org>\nF:lib\nR:ld-musl-x86_64.so.1\n\nP:busybox\nV:1.36.1-r15\nA:x86_64\nL:GPL-2.0-only\n';
    const pkgs = [...parseApkInstalled(text, { location: 'lib/apk/db/installed', distro: 'alpine-3.19' })];
    expect(pkgs).toHaveLength(2);
    expect(pkgs[0]).toMatchObject({ name: 'musl', version: '1.2.4-r2', license: 'MIT', purl: 'pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19&upstream=musl' });
  });

  it('npm: package-lock v3 and node_modules package.json', () => {
    const lock = JSON.stringify({ lockfileVersion: 3, packages: { '': { name: 'app' }, 'node_modules/@scope/x': { version: '1.0.0', license: 'MIT' }, 'node_modules/y': { version: '2.0.0' }, 'node_modules/z': { link: true } } });
    expect([...parsePackageLock(lock, 'app/package-lock.json')].map((p) => p.purl)).toEqual(['pkg:npm/%40scope/x@1.0.0', 'pkg:npm/y@2.0.0']);
    expect(parsePackageJson('{"name":"left-pad","version":"1.3.0","license":"WTFPL"}', 'node_modules/left-pad/package.json')).toMatchObject({ purl: 'pkg:npm/left-pad@1.3.0', license: 'WTFPL' });
    expect(parsePackageJson('not json', 'x')).toBeUndefined();
  });

  it('Python METADATA: PEP 503 name in the purl, License-Expression preferred', () => {
    const p = parsePythonMetadata('Metadata-Version: 2.1\nName: Typing_Extensions\nVersion: 4.8.0\nLicense: PSF\nLicense-Expression: PSF-2.0\n\nbody: ignored\n', 'x/METADATA');
    expect(p).toMatchObject({ name: 'Typing_Extensions', purl: 'pkg:pypi/typing-extensions@4.8.0', license: 'PSF-2.0' });
  });

  it('os-release', () => {
    expect(parseOsRelease('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n')).toEqual({ id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' });
  });
});

describe('Go build info', () => {
  it('reads the Go version and main package of a real Go binary (Debian docker-registry)', async () => {
    const bin = '/usr/bin/docker-registry';
    const raw = readFileSync(bin);
    const at = raw.indexOf(Buffer.from('\xff Go buildinf:', 'latin1'));
    const expectedVersion = /go1\.[0-9.]+/.exec(raw.subarray(at + 32, at + 64).toString('latin1'))![0];
    const info = await readGoBuildInfo(bin, 512 << 20);
    expect(info?.goVersion).toBe(expectedVersion);
    expect(goPackages(info!, 'usr/bin/docker-registry').at(-1)).toMatchObject({ name: 'stdlib', purl: `pkg:golang/stdlib@${expectedVersion}` });
  });

  it('decodes modules and replacements from an inline block', () => {
    const sentinel = Buffer.alloc(16, 0x30);
    const mod = Buffer.concat([sentinel, Buffer.from('path\texample.com/app\nmod\texample.com/app\tv1.2.3\th1:x\ndep\tgolang.org/x/sys\tv0.1.0\th1:y\n=>\tgithub.com/fork/sys\tv0.1.1\th1:z\n'), sentinel]);
    const varint = (n: number) => Buffer.from([n & 0x7f | (n > 127 ? 0x80 : 0), ...(n > 127 ? [n >> 7] : [])]);
    const header = Buffer.alloc(32);
    Buffer.from('\xff Go buildinf:', 'latin1').copy(header);
    header[14] = 8;
    header[15] = 2;
    const block = Buffer.concat([header, varint(8), Buffer.from('go1.22.1'), varint(mod.length), mod]);
    const info = decodeBuildInfo(block)!;
    expect(info.main).toEqual({ path: 'example.com/app', version: 'v1.2.3' });
    expect(info.deps).toEqual([{ path: 'github.com/fork/sys', version: 'v0.1.1' }]);
    expect(goPackages(info, 'app').map((p) => p.purl)).toEqual(['pkg:golang/example.com/app@v1.2.3', 'pkg:golang/github.com/fork/sys@v0.1.1', 'pkg:golang/stdlib@go1.22.1']);
  });

  it('refuses hostile lengths instead of reading past the block', () => {
    const header = Buffer.alloc(32);
    Buffer.from('\xff Go buildinf:', 'latin1').copy(header);
    header[15] = 2;
    expect(decodeBuildInfo(Buffer.concat([header, Buffer.from([0xff, 0xff, 0xff, 0x7f])]))).toBeUndefined();
  });
});

describe('SPDX document', () => {
  it('only valid SPDX expressions become licenseDeclared', () => {
    expect(spdxLicense('MIT')).toBe('MIT');
    expect(spdxLicense('(MIT OR Apache-2.0)')).toBe('(MIT OR Apache-2.0)');
    expect(spdxLicense('GPL-2.0-only WITH Classpath-exception-2.0')).toBe('GPL-2.0-only WITH Classpath-exception-2.0');
    expect(spdxLicense('SEE LICENSE IN LICENSE.txt')).toBe('NOASSERTION');
    expect(spdxLicense(undefined)).toBe('NOASSERTION');
  });

  it('is deterministic for the same inputs and describes every package', () => {
    const packages = [...parseApkInstalled('P:a\nV:1\n\nP:b\nV:2\n', { location: 'lib/apk/db/installed' })];
    const created = new Date(0);
    const a = spdxDocument({ name: 'img', created, toolVersion: '0', packages });
    const b = spdxDocument({ name: 'img', created, toolVersion: '0', packages: [...packages].reverse() });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(a.relationships.map((r) => r.relatedSpdxElement).sort()).toEqual(a.packages.map((p) => p.SPDXID).sort());
    expect(new Set(a.packages.map((p) => p.SPDXID)).size).toBe(2);
    expect(a.creationInfo.created).toBe('1970-01-01T00:00:00Z');
  });
});
