import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BuildContext } from '../../src/context/build-context.js';
import { comparePaths, compareNames } from '../../src/layer/path-order.js';
import { tempDir } from './helpers.js';

const sign = (n: number): number => Math.sign(n);
const bytes = (a: string, b: string): number => sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));

describe('layer path order', () => {
  it('puts a parent before its children and "a/x" before "a-b" (component by component)', () => {
    expect(comparePaths('a/x', 'a-b')).toBeLessThan(0);
    expect(comparePaths('a', 'a/x')).toBeLessThan(0);
    expect(comparePaths('a.b/c', 'a/c')).toBeGreaterThan(0);
  });

  it('orders names by their UTF-8 bytes, also for characters outside the BMP that share a high surrogate', () => {
    // U+1F600 and U+1F601: the same high surrogate, different low ones
    expect(compareNames('😀', '😁')).toBeLessThan(0);
    expect(compareNames('😁', '😀')).toBeGreaterThan(0);
    expect(compareNames('x😀y', 'x😁a')).toBeLessThan(0);
    expect(comparePaths('d/😀/z', 'd/😁/a')).toBeLessThan(0);
    // U+FFFD (EF BF BD) before U+1F600 (F0 …), though its UTF-16 unit is the larger
    expect(compareNames('\ufffd', '😀')).toBeLessThan(0);
  });

  it('agrees with a byte comparison of the UTF-8 names on random names mixing ASCII, BMP and supplementary characters', () => {
    const alphabet = ['a', 'B', '-', '.', 'é', 'ß', '\u4e2d', '\ue000', '\uffee', '😀', '😁', '𝄞', '🂡'];
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const name = (): string => Array.from({ length: 1 + rnd(4) }, () => alphabet[rnd(alphabet.length)]).join('');
    for (let k = 0; k < 3000; k++) {
      const a = name();
      const b = name();
      expect(sign(compareNames(a, b)), `${a} ${b}`).toBe(bytes(a, b));
    }
  });

  it('lets a context listing find each of two names that share a high surrogate', () => {
    const t = tempDir('kiln-order-');
    try {
      for (const n of ['😀', '😁']) {
        mkdirSync(join(t.path, 'src', n), { recursive: true });
        writeFileSync(join(t.path, 'src', n, 'x'), n === '😀' ? 'one' : 'three');
      }
      const ctx = BuildContext.open(t.path);
      expect(ctx.readdir('src')).toEqual(['😀', '😁']);
      expect(ctx.list('src/😁').nodes[0]!.size).toBe(5);
      expect(ctx.lstat('src/😁/x')!.size).toBe(5);
      expect(ctx.lstat('src/😀/x')!.size).toBe(3);
    } finally {
      t.cleanup();
    }
  });
});
