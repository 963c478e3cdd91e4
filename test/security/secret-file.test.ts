import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isMissingSecret, MAX_SECRET_BYTES, readSecretFile } from '../../src/sandbox/secret-file.js';
import { bench, BASE, type Bench } from '../builder/helpers.js';

/**
 * `--secret src=FILE` is read as a bounded regular file: `/dev/zero` used to fill memory until the
 * kernel killed kiln, and a FIFO held the build in open(2), deaf to SIGINT and SIGTERM.
 */
let dir: string;
let b: Bench;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'kiln-secret-'));
  b = await bench();
});
afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await b.cleanup();
});

describe('readSecretFile', () => {
  it('reads a regular file, through a link too', async () => {
    writeFileSync(path.join(dir, 'token'), 's3cret');
    symlinkSync(path.join(dir, 'token'), path.join(dir, 'link'));
    expect((await readSecretFile(path.join(dir, 'link'), 'tok')).toString()).toBe('s3cret');
  });

  it('tells a missing file (a secret not given) from one it refuses', async () => {
    const missing = await readSecretFile(path.join(dir, 'absent'), 'a').catch((e: unknown) => e);
    expect(isMissingSecret(missing)).toBe(true);
    expect(isMissingSecret(await readSecretFile('/dev/zero', 'z').catch((e: unknown) => e))).toBe(false);
    // a FIFO whose path holds the errno's name is refused, not taken for a missing file: the cause decides, not the message
    execFileSync('mkfifo', [path.join(dir, 'ENOENT-fifo')]);
    const fifo = await readSecretFile(path.join(dir, 'ENOENT-fifo'), 'x').catch((e: unknown) => e);
    expect(String(fifo)).toMatch(/ENOENT-fifo is not a regular file/);
    expect(isMissingSecret(fifo)).toBe(false);
  });

  it('refuses a FIFO at once, a character device, and a file over the limit', async () => {
    execFileSync('mkfifo', [path.join(dir, 'fifo')]);
    const started = Date.now();
    await expect(readSecretFile(path.join(dir, 'fifo'), 'f')).rejects.toThrow(/secret f: .*fifo is not a regular file/);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(readSecretFile('/dev/zero', 'z')).rejects.toThrow('secret z: /dev/zero is not a regular file');
    writeFileSync(path.join(dir, 'big'), Buffer.alloc(MAX_SECRET_BYTES + 1));
    await expect(readSecretFile(path.join(dir, 'big'), 'b')).rejects.toThrow(/larger than 512000 bytes/);
    writeFileSync(path.join(dir, 'max'), Buffer.alloc(MAX_SECRET_BYTES, 0x61));
    expect((await readSecretFile(path.join(dir, 'max'), 'm')).length).toBe(MAX_SECRET_BYTES);
  });

  it('a build with a FIFO as the secret fails at the RUN, naming it', async () => {
    const fifo = path.join(dir, 'fifo2');
    execFileSync('mkfifo', [fifo]);
    const ctx = await b.context({ Dockerfile: `FROM ${BASE}\nRUN --mount=type=secret,id=a cat /run/secrets/a\n` });
    await expect(b.build(ctx, { secrets: [{ id: 'a', src: fifo }] })).rejects.toThrow(/secret a: .*fifo2 is not a regular file/);
  });
});
