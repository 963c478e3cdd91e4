import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openContextSource } from '../../src/builder/context-source.js';
import { isKilnError } from '../../src/errors/index.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * A context from elsewhere (a tar on stdin, a download, a git checkout) may hold its Dockerfile or
 * its .dockerignore as a symlink to a host file. kiln read them by path, as root, so the host
 * file's text became the Dockerfile or the ignore patterns, and the parse error quoted it
 * ("unknown instruction SECRET…"). They are now resolved inside the context, as BuildKit reads
 * them from the context's snapshot; a link inside the context still works.
 */
let b: Bench;
let host: string;
const SECRET = 'SECRET-LINE-c0ffee';

beforeAll(async () => {
  b = await bench();
  host = path.join(b.dir, 'host');
  await mkdir(host);
  await writeFile(path.join(host, 'secret.txt'), `${SECRET}\n`);
  await writeFile(path.join(host, 'ignore.txt'), `${SECRET}[\n`);
});
afterAll(async () => {
  await b.cleanup();
});

/** A tar on stdin made from `files` (strings are files, `{ link }` symlinks), opened as `kiln build -` opens it. */
async function stdinContext(name: string, files: Record<string, string | { link: string }>): Promise<{ dir: string; untrusted?: boolean; cleanup(): Promise<void> }> {
  const dir = path.join(b.dir, name);
  for (const [p, v] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, p)), { recursive: true });
    if (typeof v === 'string') await writeFile(path.join(dir, p), v);
    else await symlink(v.link, path.join(dir, p));
  }
  const tar = execFileSync('tar', ['-c', '-C', dir, '.'], { maxBuffer: 1 << 26 });
  return openContextSource('-', { stdin: Readable.from([tar]) });
}

function expectNoSecret(err: unknown): void {
  expect(String(isKilnError(err) ? err.message : err)).not.toContain(SECRET);
}

describe('a context from stdin with links to host files', () => {
  it('a Dockerfile that is a link to a host file is not read: the Dockerfile is missing', async () => {
    const src = await stdinContext('df-link', { Dockerfile: { link: path.join(host, 'secret.txt') } });
    try {
      const err = await b.build(src.dir, { untrustedContext: src.untrusted === true }).catch((e: unknown) => e);
      expect(isKilnError(err) && err.code).toBe('NOT_FOUND');
      expect(isKilnError(err) && err.message).toMatch(/Dockerfile does not exist in the build context/);
      expectNoSecret(err);
    } finally {
      await src.cleanup();
    }
  });

  it('a .dockerignore that is a link to a host file reads none of it; a Dockerfile linked inside the context works', async () => {
    const src = await stdinContext('ignore-link', {
      'docker/Dockerfile.real': `FROM ${BASE}\nCOPY . /ctx/\n`,
      Dockerfile: { link: 'docker/Dockerfile.real' },
      '.dockerignore': { link: path.join(host, 'ignore.txt') },
      'keep.txt': 'kept\n',
    });
    try {
      expect(src.untrusted).toBe(true);
      const { events } = await b.build(src.dir, { untrustedContext: true, tags: ['localhost/sec/remote-ctx:1'] });
      expect(await b.read('localhost/sec/remote-ctx:1', '/ctx/keep.txt')).toBe('kept\n');
      expect(JSON.stringify(events)).not.toContain(SECRET);
    } finally {
      await src.cleanup();
    }
  });

  it('a local context (a directory the user named) keeps following its own links, as buildx reads them', async () => {
    const dir = await b.context({ 'keep.txt': 'kept\n', 'real.dockerignore': 'keep.txt\n', 'Dockerfile.real': `FROM ${BASE}\nCOPY . /ctx/\n` });
    await symlink('Dockerfile.real', path.join(dir, 'Dockerfile'));
    await symlink(path.join(dir, 'real.dockerignore'), path.join(dir, '.dockerignore'));
    await b.build(dir, { tags: ['localhost/sec/local-ctx:1'] });
    const fs = await b.fs('localhost/sec/local-ctx:1');
    expect(fs.lstat('ctx/keep.txt')).toBeUndefined();
    expect(fs.lstat('ctx/Dockerfile.real')?.type).toBe('file');
  });
});
