import { describe, expect, it } from 'vitest';
import { csvFields, csvMap, splitCsv, CsvQuoteError } from '../../src/spec/csv.js';
import { formatBinarySize, formatSize, parseRamSize, parseSize } from '../../src/spec/size.js';
import { parseOutputSpec, parseSecretSpec } from '../../src/builder/options.js';
import { parseCacheFrom, parseCacheTo } from '../../src/cache/spec.js';
import { parseAttestSpec } from '../../src/builder/attestations.js';
import { parseMount } from '../../src/frontend/mount.js';

describe('the one CSV parser (Go encoding/csv semantics)', () => {
  it('splits plain fields, keeps quoted commas and reads "" as one quote', () => {
    expect(splitCsv('a=1,b=2')).toEqual(['a=1', 'b=2']);
    expect(splitCsv('"name=a,b",push=true')).toEqual(['name=a,b', 'push=true']);
    expect(splitCsv('"say ""hi""",x')).toEqual(['say "hi"', 'x']);
    expect(() => splitCsv('"open,x')).toThrow(CsvQuoteError);
  });

  it('gives keys lower-cased, bare keys without value, and skips empty fields', () => {
    expect(csvFields('Type=local,,dest=out,flag')).toEqual([
      { key: 'type', value: 'local' },
      { key: 'dest', value: 'out' },
      { key: 'flag', value: undefined },
    ]);
    expect(csvMap('flag').get('flag')).toBe('true');
  });

  it('is what -o, --cache-to, --secret, --attest and RUN --mount all use: quoting works in each', () => {
    expect(parseOutputSpec('type=image,"name=r/a:1,r/b:2",push=false')).toEqual({ type: 'image', name: ['r/a:1', 'r/b:2'], push: false });
    expect(parseCacheTo('type=local,"dest=/tmp/a,b"')).toMatchObject({ type: 'local', dest: '/tmp/a,b' });
    expect(parseCacheFrom('type=local,"src=/c,d"')).toEqual({ type: 'local', src: '/c,d' });
    expect(parseSecretSpec('id=tok,"src=/run/a,b"')).toEqual({ id: 'tok', src: '/run/a,b' });
    expect(parseAttestSpec('"type=provenance",mode=max')).toMatchObject({ provenance: { mode: 'max' } });
    expect(parseMount('type=bind,"source=a,b",target=/x')).toMatchObject({ type: 'bind', source: 'a,b', target: '/x' });
  });

  it('names an unknown -o, --cache-to or --secret attribute', () => {
    expect(() => parseOutputSpec('type=local,dest=x,colour=red')).toThrow(/unknown attribute "colour"/);
    expect(() => parseCacheTo('type=local,dest=x,colour=red')).toThrow(/unknown attribute "colour"/);
    expect(() => parseSecretSpec('id=a,src=b,colour=red')).toThrow(/unknown attribute "colour"/);
    expect(() => parseOutputSpec('"type=local')).toThrow(expect.objectContaining({ code: 'USAGE', message: expect.stringMatching(/unterminated quote/) }));
  });

  it('takes the -o shorthands and does not require tar= for type=oci', () => {
    expect(parseOutputSpec('out')).toEqual({ type: 'local', dest: 'out' });
    expect(parseOutputSpec('-')).toEqual({ type: 'tar', dest: '-' });
    expect(parseOutputSpec('type=oci,dest=x.tar')).toMatchObject({ type: 'oci', dest: 'x.tar' });
  });
});

describe('the one size parser and formatter', () => {
  it('reads SI suffixes as decimal, IEC and bare letters as binary', () => {
    expect(parseSize('10GB')).toBe(10e9);
    expect(parseSize('10GiB')).toBe(10 * 2 ** 30);
    expect(parseSize('512m')).toBe(512 * 2 ** 20);
    expect(parseSize('64M')).toBe(64 * 2 ** 20);
    expect(parseSize('100kB')).toBe(100_000);
    expect(() => parseSize('ten', '--shm-size')).toThrow(/invalid --shm-size "ten"/);
  });

  it('prints decimal units as Docker does, labelled kB/MB/GB', () => {
    expect(formatSize(999)).toBe('999B');
    expect(formatSize(1536)).toBe('1.5kB');
    expect(formatSize(2_300_000)).toBe('2.3MB');
    expect(formatSize(parseSize('1GB'))).toBe('1.0GB');
  });

  it('prints memory in binary units labelled KiB/MiB, as docker stats does', () => {
    expect(formatBinarySize(1000)).toBe('1000 B');
    expect(formatBinarySize(1536)).toBe('1.50 KiB');
    expect(formatBinarySize(32 * 2 ** 20)).toBe('32.0 MiB');
  });

  it("reads a tmpfs size as BuildKit does (Docker's RAMInBytes: every suffix binary)", () => {
    expect(parseRamSize('1GB')).toBe(2 ** 30);
    expect(parseRamSize('64m')).toBe(64 * 2 ** 20);
    expect(parseRamSize('1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(parseRamSize('512')).toBe(512);
    expect(parseRamSize('1.2.3')).toBeUndefined();
    expect(parseRamSize('ten')).toBeUndefined();
    expect(parseMount('type=tmpfs,target=/t,size=1GB')).toMatchObject({ type: 'tmpfs', size: 2 ** 30 });
    expect(() => parseMount('type=tmpfs,target=/t,size=lots')).toThrow(/invalid size "lots" for tmpfs mount/);
  });
});
