import { mkdirSync, symlinkSync, writeFileSync, linkSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/image/media-types.js';
import { openUncompressed, sniffCompression } from '../../src/layer/decompress.js';
import { readTar } from '../../src/layer/tar-reader.js';
import { tarStream } from '../../src/layer/tar-writer.js';
import { setXattr } from '../../src/layer/xattr.js';
import type { TarHeader } from '../../src/layer/tar-format.js';
import { CAP_NET_BIND, collect, dirEntry, fileEntry, sh, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());

async function readAll(src: AsyncIterable<Uint8Array> | Iterable<Uint8Array>): Promise<Array<{ h: TarHeader; body: string }>> {
  const out: Array<{ h: TarHeader; body: string }> = [];
  for await (const { header, body } of readTar(src)) out.push({ h: header, body: (await collect(body)).toString() });
  return out;
}

describe('readTar', () => {
  const src = join(tmp.path, 'src');
  const longDir = 'l'.repeat(120);
  const longFile = `${longDir}/${'f'.repeat(180)}`;
  mkdirSync(join(src, longDir), { recursive: true });
  writeFileSync(join(src, longFile), 'long');
  writeFileSync(join(src, 'cap'), 'cap');
  setXattr(join(src, 'cap'), 'security.capability', CAP_NET_BIND);
  linkSync(join(src, 'cap'), join(src, 'cap2'));
  symlinkSync('t'.repeat(150), join(src, 'sym'));

  for (const format of ['gnu', 'pax', 'posix']) {
    it(`reads GNU tar's --format=${format} archives (long names, long links, hardlinks, xattrs)`, async () => {
      const xattrFlags = format === 'gnu' ? [] : ['--xattrs', '--xattrs-include=*']; // GNU format has no xattrs
      const tar = sh('tar', [...xattrFlags, `--format=${format}`, '--owner=3000000', '--group=7', '--numeric-owner', '-C', src, '-cf', '-', '--sort=name', '.']);
      const got = await readAll([tar]);
      const byName = new Map(got.map((e) => [e.h.name.replace(/^\.\//, ''), e]));
      expect(byName.get(longFile)?.body).toBe('long');
      expect(byName.get(`${longDir}/`)?.h.type).toBe('directory');
      expect(byName.get('sym')?.h.linkname).toBe('t'.repeat(150));
      expect(byName.get('cap')?.h.uid).toBe(3_000_000);
      expect(byName.get('cap')?.h.gid).toBe(7);
      const capLink = byName.get('cap2');
      expect(capLink?.h.type).toBe('hardlink');
      expect(capLink?.h.linkname.replace(/^\.\//, '')).toBe('cap');
      if (format !== 'gnu') expect(byName.get('cap')?.h.xattrs['security.capability']).toEqual(CAP_NET_BIND);
    });
  }

  it('lets callers skip bodies and still sees every entry', async () => {
    const big = Buffer.alloc(3 * 1024 * 1024 + 7, 1);
    const tar = await collect(tarStream([fileEntry('a', big), dirEntry('b'), fileEntry('c', 'c')]));
    // feed in odd-sized chunks to exercise block reassembly
    const chunks: Buffer[] = [];
    for (let i = 0; i < tar.length; i += 777) chunks.push(tar.subarray(i, i + 777));
    const names: string[] = [];
    for await (const { header } of readTar(chunks)) names.push(header.name);
    expect(names).toEqual(['a', 'b/', 'c']);
  });

  it('refuses a truncated archive', async () => {
    const tar = await collect(tarStream([fileEntry('a', 'x'.repeat(2000))]));
    await expect(readAll([tar.subarray(0, 1024)])).rejects.toThrow(/unexpected end of tar stream/);
  });

  it('refuses a header with a bad checksum', async () => {
    const tar = await collect(tarStream([fileEntry('a', 'x')]));
    tar[0] = 0x62;
    await expect(readAll([tar])).rejects.toThrow(/checksum/);
  });
});

describe('openUncompressed', () => {
  it('sniffs gzip, zstd and plain tar', async () => {
    const tar = await collect(tarStream([fileEntry('a', 'hello')]));
    const gz = sh('gzip', ['-c'], tar);
    const zst = sh('zstd', ['-c', '-q'], tar);
    expect(sniffCompression(gz)).toBe('gzip');
    expect(sniffCompression(zst)).toBe('zstd');
    expect(sniffCompression(tar)).toBe('none');
    for (const blob of [gz, zst, tar]) {
      expect((await collect(openUncompressed(Readable.from([blob]), MediaType.OCI_LAYER))).equals(tar)).toBe(true);
    }
  });
});

describe('header fields beyond ustar', () => {
  it('carries 10 GiB sizes, ids over 2097151 and pre-1970 times in PAX records, read back by GNU tar and kiln', async () => {
    const { encodeHeader, decodeHeader, parsePax } = await import('../../src/layer/tar-format.js');
    const h = encodeHeader({ path: 'huge', type: 'file', mode: 0o600, uid: 4_000_000_000, gid: 2_097_152, mtime: 0, size: 10 * 2 ** 30 }, -86_400);
    expect(h[156]).toBe(0x78);
    const paxLen = parseInt(h.toString('latin1', 124, 135), 8);
    const pax = parsePax(h.subarray(512, 512 + paxLen));
    expect(Object.fromEntries(Object.entries(pax).map(([k, v]) => [k, v.toString()]))).toEqual({
      size: String(10 * 2 ** 30),
      uid: '4000000000',
      gid: '2097152',
      mtime: '-86400',
    });
    const main = h.subarray(h.length - 512);
    const d = decodeHeader(main, pax);
    expect([d.size, d.uid, d.gid, d.mtime]).toEqual([10 * 2 ** 30, 4_000_000_000, 2_097_152, -86_400]);
    // Old readers that skip PAX still get the numbers from the GNU base-256 fields.
    const plain = decodeHeader(main, {});
    expect([plain.size, plain.uid, plain.gid, plain.mtime]).toEqual([10 * 2 ** 30, 4_000_000_000, 2_097_152, -86_400]);
    // GNU tar lists the header (then complains that the 10 GiB body is missing).
    const res = (await import('node:child_process')).spawnSync('tar', ['--numeric-owner', '--full-time', '-tvf', '-'], { input: h });
    expect(res.stdout.toString()).toBe('-rw------- 4000000000/2097152 10737418240 1969-12-31 00:00:00 huge\n');
  });

  it('readLayer iterates the entries of a compressed blob', async () => {
    const { readLayer } = await import('../../src/layer/tar-reader.js');
    const tar = await collect(tarStream([dirEntry('a'), fileEntry('a/b', 'bee')]));
    const names: string[] = [];
    for await (const { header, body } of readLayer(Readable.from([sh('zstd', ['-c', '-q'], tar)]), MediaType.OCI_LAYER_ZSTD)) {
      names.push(`${header.name}=${(await collect(body)).toString()}`);
    }
    expect(names).toEqual(['a/=', 'a/b=bee']);
  });
});

/** One ustar header block (name, size, type flag) with its checksum. */
function rawHeader(name: string, size: number, typeflag: string): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0, 'latin1');
  b.write('0000644\0', 100, 'latin1');
  b.write('0000000\0', 108, 'latin1');
  b.write('0000000\0', 116, 'latin1');
  b.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  b.write('00000000000\0', 136, 'latin1');
  b.write(typeflag, 156, 'latin1');
  b.write('ustar\u000000', 257, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

/** A PAX header entry (`x` local, `g` global) holding one record `key=value`. */
function paxEntry(type: 'x' | 'g', key: string, valueBytes: number): Buffer[] {
  const body0 = ` ${key}=${'a'.repeat(valueBytes)}\n`;
  let len = body0.length;
  while (`${len}${body0}`.length !== len) len = `${len}${body0}`.length;
  const body = Buffer.from(`${len}${body0}`, 'latin1');
  return [rawHeader('pax', body.length, type), body, Buffer.alloc((512 - (body.length % 512)) % 512)];
}

describe('readTar bounds PAX extension data per entry', () => {
  const file = (name: string): Buffer[] => [rawHeader(name, 1, '0'), Buffer.from('x'), Buffer.alloc(511)];
  const end = Buffer.alloc(1024);

  it('repeated global or local headers that add up past the bound are refused; under it they are read', async () => {
    const MiB = 1 << 20;
    // each header is under the 16 MiB bound of one header; two of them are over it together
    for (const type of ['g', 'x'] as const) {
      const tar = [...paxEntry(type, 'k1', 9 * MiB), ...paxEntry(type, 'k2', 9 * MiB), ...file('f'), end];
      await expect(readAll(tar)).rejects.toThrow(/PAX extension headers hold more than/);
    }
    // a global and a local header count together too
    await expect(readAll([...paxEntry('g', 'k1', 9 * MiB), ...paxEntry('x', 'k2', 9 * MiB), ...file('f'), end])).rejects.toThrow(/PAX/);
    // the control: one of them, and several small ones, read as before
    const ok = await readAll([...paxEntry('g', 'comment', 9 * MiB), ...paxEntry('x', 'path', 1), ...file('f'), ...file('g'), end]);
    expect(ok.map((e) => e.h.name)).toEqual(['a', 'g']);
  });

  it('more than 256 records for one entry are refused (each entry copies them: 4096 would cost CPU per file)', async () => {
    const many = Array.from({ length: 260 }, (_, i) => paxEntry('g', `k${i}`, 1)).flat();
    await expect(readAll([...many, ...file('f'), end])).rejects.toThrow(/256 keys/);
  });
});
