import { execFileSync } from 'node:child_process';
import { createReadStream, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { KilnError } from '../../src/errors/index.js';
import { MediaType } from '../../src/image/media-types.js';
import { sha256 } from '../../src/image/digest.js';
import { extractLayer } from '../../src/layer/extract.js';
import { encodeHeader, END_OF_ARCHIVE, paddingFor } from '../../src/layer/tar-format.js';
import { tarStream } from '../../src/layer/tar-writer.js';
import { writeLayer } from '../../src/layer/write-layer.js';
import { getXattr, setXattr } from '../../src/layer/xattr.js';
import type { LayerEntry } from '../../src/layer/types.js';
import { DirBlobStore } from './dir-blob-store.js';
import { CAP_NET_BIND, collect, dirEntry, fileEntry, sh, tempDir } from './helpers.js';

const tmp = tempDir();
afterAll(() => tmp.cleanup());
const store = new DirBlobStore(join(tmp.path, 'store'));
let n = 0;
const fresh = (): string => join(tmp.path, `x${n++}`);

const long300 = `d/${'c'.repeat(120)}/${'e'.repeat(200)}`;

function entries(): LayerEntry[] {
  return [
    dirEntry('d', { mode: 0o1777, mtime: 1_600_000_000 }),
    dirEntry(`d/${'c'.repeat(120)}`, { mode: 0o750 }),
    fileEntry(long300, 'deep'),
    { path: 'd/fifo', type: 'fifo', mode: 0o640, uid: 0, gid: 0, mtime: 1_700_000_000 },
    fileEntry('d/hello', 'hello world\n', { mode: 0o4755, uid: 3_000_000, gid: 3_000_001, xattrs: { 'security.capability': CAP_NET_BIND, 'user.bin': Buffer.from([0, 1, 0xff, 0xfe, 10]) } }),
    { path: 'd/link', type: 'hardlink', mode: 0o755, uid: 0, gid: 0, mtime: 1_700_000_000, linkname: 'd/hello' },
    { path: 'd/null', type: 'char', mode: 0o666, uid: 0, gid: 0, mtime: 1_700_000_000, devmajor: 1, devminor: 3 },
    { path: 'd/sda', type: 'block', mode: 0o660, uid: 0, gid: 6, mtime: 1_700_000_000, devmajor: 8, devminor: 1 },
    { path: 'd/sym', type: 'symlink', mode: 0o777, uid: 5, gid: 5, mtime: 1_700_000_000, linkname: '/etc/../nowhere' },
    fileEntry('z', 'late', { mtime: 1_900_000_000 }),
  ];
}

describe('extractLayer', () => {
  it('round-trips every entry kind with owners, modes, times, binary xattrs, devices and hardlinks', async () => {
    const w = await writeLayer(entries(), store);
    const dir = fresh();
    const { diffID } = await extractLayer(store.openBlob(w.digest), w.mediaType, dir);
    expect(diffID).toBe(w.diffID);

    const hello = lstatSync(join(dir, 'd/hello'));
    expect([hello.uid, hello.gid, hello.mode & 0o7777, hello.mtimeMs / 1000]).toEqual([3_000_000, 3_000_001, 0o4755, 1_700_000_000]);
    expect(readFileSync(join(dir, 'd/hello'), 'utf8')).toBe('hello world\n');
    expect(getXattr(join(dir, 'd/hello'), 'security.capability')).toEqual(CAP_NET_BIND);
    expect(getXattr(join(dir, 'd/hello'), 'user.bin')).toEqual(Buffer.from([0, 1, 0xff, 0xfe, 10]));
    expect(sh('getcap', [join(dir, 'd/hello')]).toString()).toContain('cap_net_bind_service=ep');
    const link = lstatSync(join(dir, 'd/link'));
    expect(link.ino).toBe(hello.ino);
    expect(hello.nlink).toBe(2);
    const d = lstatSync(join(dir, 'd'));
    expect([d.isDirectory(), d.mode & 0o7777, d.mtimeMs / 1000]).toEqual([true, 0o1777, 1_600_000_000]);
    expect(lstatSync(join(dir, `d/${'c'.repeat(120)}`)).mode & 0o7777).toBe(0o750);
    expect(readFileSync(join(dir, long300), 'utf8')).toBe('deep');
    const nul = lstatSync(join(dir, 'd/null'));
    expect([nul.isCharacterDevice(), nul.rdev, nul.mode & 0o7777]).toEqual([true, 0x103, 0o666]);
    const sda = lstatSync(join(dir, 'd/sda'));
    expect([sda.isBlockDevice(), sda.rdev, sda.gid]).toEqual([true, 0x801, 6]);
    expect(lstatSync(join(dir, 'd/fifo')).isFIFO()).toBe(true);
    const sym = lstatSync(join(dir, 'd/sym'));
    expect([sym.isSymbolicLink(), sym.uid, readlinkSync(join(dir, 'd/sym'))]).toEqual([true, 5, '/etc/../nowhere']);
    expect(lstatSync(join(dir, 'z')).mtimeMs / 1000).toBe(1_900_000_000);
  });

  it('agrees with GNU tar about the extracted tree', async () => {
    const w = await writeLayer(entries(), store, { compression: 'uncompressed' });
    const ours = fresh();
    await extractLayer(store.openBlob(w.digest), w.mediaType, ours);
    const gnu = fresh();
    mkdirSync(gnu);
    sh('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', store.blobPath(w.digest), '-C', gnu]);
    const tree = (root: string): string => sh('find', [root, '-printf', '%P %y %m %U:%G %T@ %l\\n']).toString().split('\n').filter((l) => !l.startsWith(' ')).sort().join('\n');
    expect(tree(ours)).toBe(tree(gnu));
    expect(sh('getfattr', ['-h', '-e', 'hex', '-d', '-m', '-', join(ours, 'd/hello')]).toString().replace(ours.slice(1), '')).toBe(
      sh('getfattr', ['-h', '-e', 'hex', '-d', '-m', '-', join(gnu, 'd/hello')]).toString().replace(gnu.slice(1), ''),
    );
  });

  it('decompresses zstd and uncompressed layers, and trusts magic bytes over a wrong media type', async () => {
    for (const compression of ['zstd', 'uncompressed'] as const) {
      const w = await writeLayer(entries(), store, { compression });
      const dir = fresh();
      const { diffID } = await extractLayer(createReadStream(store.blobPath(w.digest)), MediaType.OCI_LAYER_GZIP, dir);
      expect(diffID).toBe(w.diffID);
      expect(readFileSync(join(dir, long300), 'utf8')).toBe('deep');
    }
  });

  it('turns OCI whiteouts into overlay whiteouts', async () => {
    const layer = [
      fileEntry('.wh.top', ''),
      dirEntry('a'),
      fileEntry('a/.wh..wh..opq', ''),
      fileEntry('a/.wh.gone', '', { mode: 0o600 }),
      fileEntry('a/kept', 'k'),
    ];
    const w = await writeLayer(layer, store);
    const dir = fresh();
    await extractLayer(store.openBlob(w.digest), w.mediaType, dir);
    expect(readdirSync(dir).sort()).toEqual(['a', 'top']);
    expect(readdirSync(join(dir, 'a')).sort()).toEqual(['gone', 'kept']);
    for (const p of ['a/gone', 'top']) {
      const st = lstatSync(join(dir, p));
      expect([st.isCharacterDevice(), st.rdev]).toEqual([true, 0]);
    }
    expect(getXattr(join(dir, 'a'), 'trusted.overlay.opaque')).toEqual(Buffer.from('y'));
    expect(getXattr(dir, 'trusted.overlay.opaque')).toBeUndefined();
  });

  it('reports a corrupt gzip stream as an ARCHIVE error', async () => {
    const w = await writeLayer(entries(), store);
    const blob = readFileSync(store.blobPath(w.digest));
    const err = await extractLayer(Readable.from([blob.subarray(0, blob.length - 40)]), w.mediaType, fresh()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KilnError);
    expect((err as KilnError).code).toBe('ARCHIVE');
  });
});

/** A raw tar from headers the writer itself would refuse to produce. */
function rawTar(list: Array<Partial<LayerEntry> & { path: string; type: LayerEntry['type']; body?: string }>): Buffer {
  const parts: Buffer[] = [];
  for (const e of list) {
    const body = Buffer.from(e.body ?? '');
    parts.push(encodeHeader({ mode: 0o644, uid: 0, gid: 0, mtime: 0, ...e, size: body.length }, e.mtime ?? 0));
    parts.push(body, Buffer.alloc(paddingFor(body.length)));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

describe('extractLayer refuses unsafe entries', () => {
  const outside = join(tmp.path, 'outside');
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'secret'), 'secret');

  const cases: Array<{ name: string; offender: string; tar: Parameters<typeof rawTar>[0] }> = [
    { name: '".." at the start', offender: '../evil', tar: [{ path: '../evil', type: 'file', body: 'x' }] },
    { name: '".." in the middle', offender: 'a/../../evil', tar: [{ path: 'a/../../evil', type: 'file', body: 'x' }] },
    { name: 'a lone ".."', offender: '..', tar: [{ path: '..', type: 'directory' }] },
    { name: 'an absolute path', offender: '/etc/evil', tar: [{ path: '/etc/evil', type: 'file', body: 'x' }] },
    { name: 'a ./-prefixed absolute-looking path with ..', offender: './../evil', tar: [{ path: './../evil', type: 'file', body: 'x' }] },
    {
      name: 'writing through a symlink to an absolute directory',
      offender: 'esc/evil',
      tar: [
        { path: 'esc', type: 'symlink', linkname: outside },
        { path: 'esc/evil', type: 'file', body: 'x' },
      ],
    },
    {
      name: 'writing through a relative symlink that climbs out',
      offender: 'a/up/evil',
      tar: [
        { path: 'a', type: 'directory' },
        { path: 'a/up', type: 'symlink', linkname: '../../outside' },
        { path: 'a/up/evil', type: 'file', body: 'x' },
      ],
    },
    {
      name: 'a directory replaced by a symlink, then written through',
      offender: 'd/evil',
      tar: [
        { path: 'd', type: 'directory' },
        { path: 'd', type: 'symlink', linkname: outside },
        { path: 'd/evil', type: 'file', body: 'x' },
      ],
    },
    { name: 'a hardlink to ../', offender: 'h', tar: [{ path: 'h', type: 'hardlink', linkname: '../outside/secret' }] },
    { name: 'a hardlink to an absolute path', offender: 'h', tar: [{ path: 'h', type: 'hardlink', linkname: join(outside, 'secret') }] },
    {
      name: 'a hardlink through a symlinked directory',
      offender: 'h',
      tar: [
        { path: 'esc', type: 'symlink', linkname: outside },
        { path: 'h', type: 'hardlink', linkname: 'esc/secret' },
      ],
    },
    { name: 'a whiteout of ".."', offender: 'a/.wh...', tar: [{ path: 'a', type: 'directory' }, { path: 'a/.wh...', type: 'file' }] },
    {
      name: 'a whiteout through a symlink',
      offender: 'esc/.wh.secret',
      tar: [
        { path: 'esc', type: 'symlink', linkname: outside },
        { path: 'esc/.wh.secret', type: 'file' },
      ],
    },
  ];

  for (const c of cases) {
    it(`refuses ${c.name}, naming the entry`, async () => {
      const target = fresh();
      const err = await extractLayer(Readable.from([rawTar(c.tar)]), MediaType.OCI_LAYER, target).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KilnError);
      expect((err as KilnError).code).toBe('UNSAFE_PATH');
      expect((err as KilnError).message).toContain(`"${c.offender}"`);
      expect(readdirSync(outside)).toEqual(['secret']);
      expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe('secret');
      expect(existsSync(join(tmp.path, 'evil'))).toBe(false);
    });
  }

  it('accepts symlinks that point anywhere as long as nothing is written through them', async () => {
    const target = fresh();
    const tar = rawTar([
      { path: 'esc', type: 'symlink', linkname: outside },
      { path: 'up', type: 'symlink', linkname: '../../..' },
      { path: 'h', type: 'hardlink', linkname: 'esc' },
    ]);
    await extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, target);
    expect(readlinkSync(join(target, 'esc'))).toBe(outside);
    expect(readlinkSync(join(target, 'h'))).toBe(outside);
    expect(lstatSync(join(target, 'h')).ino).toBe(lstatSync(join(target, 'esc')).ino);
  });

  it('sets no directory times through a parent that a later entry made a symlink', async () => {
    // a/ and a/b/ are recorded for their times, then a becomes a link to a host directory holding b
    const hostB = join(outside, 'b');
    mkdirSync(hostB, { recursive: true });
    const before = lstatSync(hostB);
    const target = fresh();
    const tar = rawTar([
      { path: 'a', type: 'directory', mode: 0o755, mtime: 123_456_789 },
      { path: 'a/b', type: 'directory', mode: 0o755, mtime: 123_456_789 },
      { path: 'a', type: 'symlink', linkname: outside },
    ]);
    await extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, target);
    expect(readlinkSync(join(target, 'a'))).toBe(outside);
    const after = lstatSync(hostB);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    expect(after.atimeMs).toBe(before.atimeMs);
    rmSync(hostB, { recursive: true });
  });

  it('extracts many small files, hardlinks to them, replacements and a whiteout to the tree GNU tar makes', async () => {
    const list: Parameters<typeof rawTar>[0] = [{ path: 'a', type: 'directory', mode: 0o755 }, { path: 'b', type: 'directory', mode: 0o750, uid: 7 }];
    for (let i = 0; i < 600; i++) {
      const dir = i % 3 === 0 ? 'b' : 'a';
      list.push({ path: `${dir}/f${i}`, type: 'file', body: `${i}\n`.repeat(i % 50), mode: 0o600 + (i % 8) * 0o10, uid: i % 5, gid: i % 7, mtime: 1_700_000_000 + i });
      // A hardlink right after its target: the target must exist (and be complete) first.
      if (i % 25 === 0) list.push({ path: `${dir}/l${i}`, type: 'hardlink', linkname: `${dir}/f${i}` });
    }
    list.push(
      { path: 'a/big', type: 'file', body: 'B'.repeat(300 << 10), mode: 0o640, mtime: 1_650_000_000 },
      { path: 'a/f1', type: 'file', body: 'replaced', mode: 0o700, uid: 9, mtime: 1_600_000_000 }, // replaces a file
      { path: 'a/f2', type: 'symlink', linkname: 'f1' }, // a file replaced by a symlink
      { path: 'b/f0', type: 'file', body: 'new inode', mtime: 1_600_000_001 }, // b/l0 keeps the old one
      { path: 'a/f4', type: 'file', body: 'last', mode: 0o604 },
      { path: 'a/.wh.f7', type: 'file' },
    );
    const tar = rawTar(list);
    const ours = fresh();
    await extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, ours);
    const gnu = fresh();
    mkdirSync(gnu);
    sh('tar', ['--numeric-owner', '-xpf', '-', '-C', gnu], tar);
    // GNU tar knows no whiteouts: it writes ".wh.f7" as a file and keeps "f7".
    rmSync(join(gnu, 'a/.wh.f7'));
    rmSync(join(gnu, 'a/f7'));
    // Directory times are left out: removing GNU tar's whiteout file changes a/'s, and GNU tar
    // applies b/'s before the late b/f0 entry changes it. The round-trip test covers them.
    const tree = (root: string): string =>
      sh('find', [root, '-printf', '%P %y %m %U:%G %n %s %T@ %l\\n'])
        .toString()
        .split('\n')
        .filter((l) => !l.startsWith(' ') && !l.startsWith('a/f7 '))
        .map((l) => (l.split(' ')[1] === 'd' ? l.split(' ').slice(0, 6).join(' ') : l))
        .sort()
        .join('\n');
    const contents = (root: string): string => sh('sh', ['-c', 'cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum', 'sh', root]).toString();
    expect(tree(ours)).toBe(tree(gnu));
    expect(contents(ours)).toBe(contents(gnu));
    const wh = lstatSync(join(ours, 'a/f7'));
    expect([wh.isCharacterDevice(), wh.rdev]).toEqual([true, 0]);
    expect(lstatSync(join(ours, 'b/l0')).ino).not.toBe(lstatSync(join(ours, 'b/f0')).ino);
    expect(lstatSync(join(ours, 'a/l25')).ino).toBe(lstatSync(join(ours, 'a/f25')).ino);
  });

  it('lets a later entry replace an earlier one (tar semantics)', async () => {
    const target = fresh();
    const tar = rawTar([
      { path: 'f', type: 'file', body: 'one' },
      { path: 'f', type: 'file', body: 'two' },
      { path: 'd', type: 'directory' },
      { path: 'd/x', type: 'file', body: 'x' },
      { path: 'd', type: 'file', body: 'now a file' },
    ]);
    const { diffID } = await extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, target);
    expect(diffID).toBe(sha256(tar));
    expect(readFileSync(join(target, 'f'), 'utf8')).toBe('two');
    expect(readFileSync(join(target, 'd'), 'utf8')).toBe('now a file');
  });
});

describe('tar written by kiln, read by kiln', () => {
  it('hashes every byte, including the end-of-archive blocks', async () => {
    const tar = await collect(tarStream(entries()));
    const { diffID } = await extractLayer(Readable.from([Buffer.concat([tar, Buffer.alloc(10240)])]), MediaType.OCI_LAYER, fresh());
    expect(diffID).toBe(sha256(Buffer.concat([tar, Buffer.alloc(10240)])));
  });
});

describe('extractLayer and the build signal', () => {
  it('stops between entries once the signal aborts, and a repeated deep name extracts as tar does', async () => {
    const deep = `${Array(200).fill('a').join('/')}/f`;
    const tar = rawTar(Array.from({ length: 50 }, (_, i) => ({ path: deep, type: 'file' as const, body: `v${i}` })));
    // the last entry wins
    const dir = fresh();
    await extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, dir);
    expect(readFileSync(join(dir, deep), 'utf8')).toBe('v49');
    const stop = new AbortController();
    stop.abort(new Error('SIGTERM'));
    await expect(extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, fresh(), undefined, stop.signal)).rejects.toThrow('SIGTERM');
  });
});

/**
 * Extraction leaves out the chown and chmod of an entry that already is so as created (its own
 * effective ids, no special bits, nothing the umask took, a parent without the set-group-ID bit).
 * Every case where that shortcut would be wrong must still come out exactly as the header says.
 */
describe('extracted owners and modes are exactly the headers\', created or set', () => {
  const mode = (p: string): number => lstatSync(p).mode & 0o7777;
  const owner = (p: string): string => `${lstatSync(p).uid}:${lstatSync(p).gid}`;

  it('files, directories and symlinks of every common mode and owner, as root', async () => {
    const target = fresh();
    const tar = rawTar([
      { path: 'd/', type: 'directory', mode: 0o755 },
      { path: 'd/plain', type: 'file', mode: 0o644, body: 'a' },
      { path: 'd/private', type: 'file', mode: 0o600, body: 'a' },
      { path: 'd/exec', type: 'file', mode: 0o755, body: 'a' },
      // bits the usual umask (022) takes: a create with the mode alone would lose them
      { path: 'd/shared', type: 'file', mode: 0o666, body: 'a' },
      { path: 'd/all', type: 'file', mode: 0o777, body: 'a' },
      { path: 'd/suid', type: 'file', mode: 0o4755, body: 'a' },
      { path: 'd/sgid', type: 'file', mode: 0o2755, body: 'a' },
      { path: 'd/none', type: 'file', mode: 0o000, body: 'a' },
      { path: 'd/user', type: 'file', mode: 0o644, uid: 1000, gid: 1000, body: 'a' },
      { path: 'd/group', type: 'file', mode: 0o640, uid: 0, gid: 42, body: 'a' },
      { path: 'd/link', type: 'symlink', linkname: 'plain' },
      { path: 'd/userlink', type: 'symlink', linkname: 'plain', uid: 1000, gid: 7 },
      { path: 'tmp/', type: 'directory', mode: 0o1777 },
      { path: 'open/', type: 'directory', mode: 0o777 },
      { path: 'closed/', type: 'directory', mode: 0o500, uid: 1000, gid: 1000 },
      { path: 'closed/f', type: 'file', mode: 0o644, body: 'a' },
    ]);
    await extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, target);
    const at = (p: string): string => join(target, p);
    expect(mode(at('d'))).toBe(0o755);
    expect(mode(at('d/plain'))).toBe(0o644);
    expect(mode(at('d/private'))).toBe(0o600);
    expect(mode(at('d/exec'))).toBe(0o755);
    expect(mode(at('d/shared'))).toBe(0o666);
    expect(mode(at('d/all'))).toBe(0o777);
    expect(mode(at('d/suid'))).toBe(0o4755);
    expect(mode(at('d/sgid'))).toBe(0o2755);
    expect(mode(at('d/none'))).toBe(0o000);
    expect(owner(at('d/plain'))).toBe('0:0');
    expect(owner(at('d/user'))).toBe('1000:1000');
    expect(owner(at('d/group'))).toBe('0:42');
    expect(owner(at('d/link'))).toBe('0:0');
    expect(owner(at('d/userlink'))).toBe('1000:7');
    expect(mode(at('tmp'))).toBe(0o1777);
    expect(mode(at('open'))).toBe(0o777);
    expect(mode(at('closed'))).toBe(0o500);
    expect(owner(at('closed'))).toBe('1000:1000');
    expect(owner(at('closed/f'))).toBe('0:0');
  });

  it('under a set-group-ID directory, explicit and implicit, entries keep their own group and bits', async () => {
    const target = fresh();
    const tar = rawTar([
      { path: 'g/', type: 'directory', mode: 0o2775, uid: 0, gid: 50 },
      // a new inode here would take group 50, and a new directory the set-group-ID bit
      { path: 'g/f', type: 'file', mode: 0o644, body: 'a' },
      { path: 'g/l', type: 'symlink', linkname: 'f' },
      { path: 'g/sub/', type: 'directory', mode: 0o755 },
      { path: 'g/sub/f', type: 'file', mode: 0o644, body: 'a' },
      // no entry for g/implicit/: made by the extractor, inside g, then a file in it
      { path: 'g/implicit/f', type: 'file', mode: 0o644, body: 'a' },
      // the bit cleared on a directory that had it: what is made in it afterwards is plain again
      { path: 'h/', type: 'directory', mode: 0o2755, gid: 60 },
      { path: 'h/', type: 'directory', mode: 0o755 },
      { path: 'h/f', type: 'file', mode: 0o644, body: 'a' },
    ]);
    await extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, target);
    const at = (p: string): string => join(target, p);
    expect(mode(at('g'))).toBe(0o2775);
    expect(owner(at('g'))).toBe('0:50');
    expect(owner(at('g/f'))).toBe('0:0');
    expect(owner(at('g/l'))).toBe('0:0');
    expect(mode(at('g/sub'))).toBe(0o755);
    expect(owner(at('g/sub'))).toBe('0:0');
    expect(owner(at('g/sub/f'))).toBe('0:0');
    expect(owner(at('g/implicit/f'))).toBe('0:0');
    expect(mode(at('g/implicit/f'))).toBe(0o644);
    expect(mode(at('h'))).toBe(0o755);
    expect(owner(at('h/f'))).toBe('0:0');
  });

  // system.posix_acl_default in the kernel's xattr form: version 2, then (tag, perm, id) entries: u::rwx, g::r-x, o::---
  const defaultAcl = Buffer.concat([
    Buffer.from([2, 0, 0, 0]),
    ...[[0x01, 7], [0x04, 5], [0x20, 0]].map(([tag, perm]) => {
      const e = Buffer.alloc(8);
      e.writeUInt16LE(tag!, 0);
      e.writeUInt16LE(perm!, 2);
      e.writeUInt32LE(0xffffffff, 4);
      return e;
    }),
  ]);

  it('under a directory with a default ACL (which the kernel applies instead of the umask), modes are still the headers\'', async () => {
    const target = fresh();
    const tar = await collect(tarStream([
      dirEntry('acl', { mode: 0o755, xattrs: { 'system.posix_acl_default': defaultAcl } }),
      fileEntry('acl/f', 'a', { mode: 0o644 }),
      // no entry for acl/implicit/: made inside acl, so it inherits the default ACL too
      fileEntry('acl/implicit/f', 'a', { mode: 0o644 }),
      dirEntry('acl/sub', { mode: 0o755 }),
      fileEntry('acl/sub/f', 'a', { mode: 0o644 }),
    ]));
    await extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, target);
    // the ACL is there: a file made in it now by anyone gets the ACL's bits, not the umask's
    writeFileSync(join(target, 'acl', 'probe'), 'x', { mode: 0o644 });
    expect(mode(join(target, 'acl', 'probe'))).toBe(0o640);
    expect(mode(join(target, 'acl', 'f'))).toBe(0o644);
    expect(mode(join(target, 'acl', 'sub'))).toBe(0o755);
    expect(mode(join(target, 'acl', 'sub', 'f'))).toBe(0o644);
    expect(mode(join(target, 'acl', 'implicit', 'f'))).toBe(0o644);
  });

  it('into a target directory that has a default ACL itself', async () => {
    const target = fresh();
    mkdirSync(target);
    setXattr(target, 'system.posix_acl_default', defaultAcl);
    const tar = rawTar([
      { path: 'f', type: 'file', mode: 0o644, body: 'a' },
      { path: 'd/', type: 'directory', mode: 0o755 },
    ]);
    await extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, target);
    expect(mode(join(target, 'f'))).toBe(0o644);
    expect(mode(join(target, 'd'))).toBe(0o755);
  });

  it('into a target directory that has the set-group-ID bit itself', async () => {
    const target = fresh();
    mkdirSync(target);
    execFileSync('chown', ['0:77', target]);
    execFileSync('chmod', ['2755', target]);
    const tar = rawTar([
      { path: 'f', type: 'file', mode: 0o644, body: 'a' },
      { path: 'd/', type: 'directory', mode: 0o755 },
      { path: 'l', type: 'symlink', linkname: 'f' },
    ]);
    await extractLayer(Readable.from([tar]), MediaType.OCI_LAYER, target);
    expect(owner(join(target, 'f'))).toBe('0:0');
    expect(owner(join(target, 'd'))).toBe('0:0');
    expect(mode(join(target, 'd'))).toBe(0o755);
    expect(owner(join(target, 'l'))).toBe('0:0');
  });
});
