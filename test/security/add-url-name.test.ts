import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadUrl } from '../../src/steps/copy-url.js';
import { tempDir } from '../helpers/temp-dir.js';

/**
 * ADD <url> names the downloaded file after the URL path. A hostile URL whose last
 * element decodes to a relative path (`..%2F..%2Fx`) or whose Content-Disposition names
 * one must not place the file outside the download directory on the host.
 */
describe('ADD <url> file name', () => {
  let server: Server;
  let base: string;
  beforeAll(async () => {
    server = createServer((req, res) => {
      const headers: Record<string, string> = req.url === '/' ? { 'Content-Disposition': 'attachment; filename="../../disposed"' } : {};
      res.writeHead(200, headers);
      res.end(`body of ${req.url}`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('an encoded ../ in the URL path names a file inside the download directory, as BuildKit names it', async () => {
    const t = await tempDir();
    try {
      const dir = join(t.path, 'a', 'b', 'dl');
      mkdirSync(dir, { recursive: true });
      const got = await downloadUrl(`${base}/x/..%2F..%2Fescaped`, dir);
      expect(got.name).toBe('escaped');
      expect(got.file).toBe(join(dir, 'escaped'));
      expect(readFileSync(got.file, 'utf8')).toBe('body of /x/..%2F..%2Fescaped');
      expect(existsSync(join(t.path, 'a', 'escaped'))).toBe(false);
      expect(readdirSync(join(t.path, 'a')).sort()).toEqual(['b']);

      // a path ending in an encoded `..`, a NUL, or a Content-Disposition with a path: one plain name or the fallback
      expect((await downloadUrl(`${base}/x/..%2F`, dir)).name).toBe('__unnamed__');
      expect((await downloadUrl(`${base}/x/a%00b`, dir)).name).toBe('__unnamed__');
      expect((await downloadUrl(`${base}/`, dir)).name).toBe('disposed');
      expect(readdirSync(join(t.path, 'a')).sort()).toEqual(['b']);
      expect(readdirSync(dir).sort()).toEqual(['__unnamed__', 'disposed', 'escaped']);
    } finally {
      await t.cleanup();
    }
  });
});
