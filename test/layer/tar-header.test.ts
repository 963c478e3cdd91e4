import { describe, expect, it } from 'vitest';
import { BLOCK_SIZE, encodeHeader, encodeHeaderInto } from '../../src/layer/tar-format.js';
import type { LayerEntry } from '../../src/layer/types.js';

/** The checksum as POSIX defines it: every byte of the block, the checksum field counted as eight spaces. */
function posixChecksum(block: Buffer): number {
  let sum = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum;
}

function octalField(block: Buffer, off: number, len: number): string {
  return block.subarray(off, off + len).toString('latin1');
}

const base = { mode: 0o644, uid: 0, gid: 0, mtime: 1_700_000_000 };
const entries: LayerEntry[] = [
  { ...base, path: 'a', type: 'file', size: 0 },
  { ...base, path: 'etc/passwd', type: 'file', size: 1234, mode: 0o4755, uid: 1000, gid: 2097151 },
  { ...base, path: 'usr/share/doc', type: 'directory', mode: 0o755 },
  { ...base, path: 'bin/sh', type: 'symlink', mode: 0o777, linkname: 'busybox' },
  { ...base, path: 'dev/null', type: 'char', mode: 0o666, devmajor: 1, devminor: 3 },
  { ...base, path: 'big', type: 'file', size: 0o77777777777, mtime: 0 },
  // over 100 bytes: split into prefix and name
  { ...base, path: `${'d'.repeat(120)}/${'n'.repeat(90)}`, type: 'file', size: 5 },
  { ...base, path: 'ü/ñame-ä', type: 'file', size: 7 },
];

describe('tar headers', () => {
  it('carry the POSIX checksum of the whole block, whichever fields are set', () => {
    for (const e of entries) {
      const out = Buffer.alloc(3 * BLOCK_SIZE, 0xee);
      // written into a dirty batch buffer at an offset, as the layer writer does
      expect(encodeHeaderInto(e, e.mtime, out, BLOCK_SIZE), e.path).toBe(true);
      const block = out.subarray(BLOCK_SIZE, 2 * BLOCK_SIZE);
      const sum = posixChecksum(block);
      expect(octalField(block, 148, 8), e.path).toBe(`${sum.toString(8).padStart(6, '0')}\0 `);
      expect(block.equals(encodeHeader(e, e.mtime)), e.path).toBe(true);
      // the bytes around it are left alone
      expect(out.subarray(0, BLOCK_SIZE).every((b) => b === 0xee) && out.subarray(2 * BLOCK_SIZE).every((b) => b === 0xee), e.path).toBe(true);
    }
  });

  it('write numeric fields as zero-padded octal with a NUL', () => {
    const e = entries[1]!;
    const block = encodeHeader(e, e.mtime);
    expect(octalField(block, 100, 8)).toBe('0004755\0');
    expect(octalField(block, 108, 8)).toBe('0001750\0');
    expect(octalField(block, 116, 8)).toBe('7777777\0');
    expect(octalField(block, 124, 12)).toBe('00000002322\0');
    expect(octalField(block, 136, 12)).toBe(`${(1_700_000_000).toString(8)}\0`);
    expect(octalField(block, 257, 8)).toBe('ustar\x0000');
    const dev = encodeHeader(entries[4]!, 0);
    expect(octalField(dev, 329, 16)).toBe('0000001\x000000003\0');
  });

  it('move ids over 2097151 to a PAX record and keep the ustar checksum right', () => {
    const e: LayerEntry = { ...base, path: 'x', type: 'file', size: 1, uid: 100_000_000 };
    expect(encodeHeaderInto(e, e.mtime, Buffer.alloc(BLOCK_SIZE), 0)).toBe(false);
    const all = encodeHeader(e, e.mtime);
    expect(all.length % BLOCK_SIZE).toBe(0);
    for (let off = 0; off < all.length; off += BLOCK_SIZE) {
      const block = all.subarray(off, off + BLOCK_SIZE);
      if (block.subarray(257, 262).toString('latin1') !== 'ustar') continue;
      expect(octalField(block, 148, 6)).toBe(posixChecksum(block).toString(8).padStart(6, '0'));
    }
    expect(all.toString('latin1')).toContain('uid=100000000\n');
  });
});
