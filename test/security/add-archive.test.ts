import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KilnError } from '../../src/errors/index.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * ADD unpacks a local tar from the build context, whose author controls
 * every header. Sizes come from the header or a PAX record; one that is
 * negative must be refused, not followed backwards through the archive (which
 * read the same headers forever, in a synchronous loop no signal could stop).
 */

/** A ustar header with a valid checksum. */
function header(name: string, type: string, size: number): Buffer {
  const b = Buffer.alloc(512);
  b.write(name, 0);
  b.write('0000644\0', 100);
  b.write('0000000\0', 108);
  b.write('0000000\0', 116);
  b.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  b.write('00000000000\0', 136);
  b.write('        ', 148);
  b.write(type, 156);
  b.write('ustar\0', 257);
  b.write('00', 263);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return b;
}

/** A PAX header giving the next entry `size`, then that entry (its own header says 0). */
function paxSized(size: string): Buffer {
  const body = ` size=${size}\n`;
  let rec = `${body.length + 2}${body}`;
  if (rec.length !== Number.parseInt(rec, 10)) rec = `${body.length + 3}${body}`;
  const data = Buffer.alloc(512);
  data.write(rec);
  return Buffer.concat([header('PaxHeader/f', 'x', rec.length), data, header('f', '0', 0), Buffer.alloc(1024)]);
}

let b: Bench;
beforeAll(async () => {
  b = await bench();
});
afterAll(async () => b.cleanup());

describe('ADD of a hostile local archive', () => {
  for (const size of ['-1536', '-512', '1e400', '12.5']) {
    it(`a PAX size of ${size} is refused with the archive's name`, async () => {
      const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nADD evil.tar /x/\n` });
      await writeFile(path.join(ctx, 'evil.tar'), paxSized(size));
      const err = (await b.build(ctx).catch((e: unknown) => e)) as KilnError;
      expect(err.code).toBe('ARCHIVE');
      expect(err.message).toContain('evil.tar');
      expect(err.message).toContain('invalid entry size');
    });
  }
});
