import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isKilnError } from '../../src/errors/index.js';
import { heredocFileName } from '../../src/steps/heredoc.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * A COPY heredoc's name comes from the Dockerfile and names the file kiln writes for it before the
 * copy (also on a cached build, where it feeds the cache key). A name with `..` must stay inside
 * that file's own scratch tree: joined to the host path as written, it created or overwrote any
 * host file, as root.
 */
let b: Bench;
let hostDir: string;
const up = '../../../../../../../../../../..';

beforeAll(async () => {
  b = await bench();
  hostDir = path.join(b.dir, 'host');
  await mkdir(hostDir);
  await writeFile(path.join(hostDir, 'existing'), 'original\n');
});
afterAll(async () => {
  await b.cleanup();
});

describe('COPY <<NAME with a name that climbs out', () => {
  it('neither overwrites nor creates a host file; the file is copied as BuildKit names it (inside its tree)', async () => {
    const ctx = await b.context({
      Dockerfile: `FROM ${BASE}
COPY <<${up}${hostDir}/existing /x
written-by-heredoc
${up}${hostDir}/existing
COPY <<${up}${hostDir}/created /dir/
new file
${up}${hostDir}/created
`,
    });
    await b.build(ctx, { tags: ['localhost/sec/heredoc:1'] });
    expect(await readFile(path.join(hostDir, 'existing'), 'utf8')).toBe('original\n');
    expect(existsSync(path.join(hostDir, 'created'))).toBe(false);
    expect(await b.read('localhost/sec/heredoc:1', '/x')).toBe('written-by-heredoc\n');
    expect(await b.read('localhost/sec/heredoc:1', `/dir/created`)).toBe('new file\n');
    // again from the cache: the files are written for the key too
    await b.build(ctx, { tags: ['localhost/sec/heredoc:1'] });
    expect(await readFile(path.join(hostDir, 'existing'), 'utf8')).toBe('original\n');
    expect(existsSync(path.join(hostDir, 'created'))).toBe(false);
  });

  it('names are paths inside the tree; one that names nothing is refused', () => {
    expect(heredocFileName('EOF')).toBe('EOF');
    expect(heredocFileName('../../etc/passwd')).toBe('etc/passwd');
    expect(heredocFileName('/abs/x/')).toBe('abs/x');
    expect(heredocFileName('a/./b/../c')).toBe('a/c');
    const err = (() => {
      try {
        heredocFileName('../..');
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(isKilnError(err) && err.code).toBe('CONTEXT');
    expect(isKilnError(err) && err.message).toMatch(/does not name a file/);
  });
});
