import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebuildIfStale } from '../helpers/kiln-cli.js';

/**
 * Key files are paths a user names, read as root in CI: /dev/zero grew memory
 * until V8 aborted, so only 64 KiB of any key is read (a pipe still works, as
 * process substitution gives). And a
 * key pair is never half written, nor encrypted with a password nobody gave.
 * Each command runs bounded in time, so a kiln that hangs fails the test.
 */
const KILN = fileURLToPath(new URL('../../bin/kiln', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'kiln-keyfiles-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeAll(async () => {
  await rebuildIfStale(['sign/keys', 'cli/commands/sign', 'builder/sign-pushed']);
});

function kiln(args: string[], env: Record<string, string | undefined>): { code: number | null; signal: string | null; err: string } {
  const r = spawnSync(process.execPath, [KILN, ...args], { env, encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  return { code: r.status, signal: r.signal, err: r.stderr.trim() };
}

const withPassword = { ...process.env, COSIGN_PASSWORD: 'pw' };
const withoutPassword = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'COSIGN_PASSWORD'));

describe('key files', () => {
  it('a device is read only up to 64 KiB and an oversized file not at all, before any registry is asked; a pipe with a writer works', () => {
    const big = join(dir, 'big.key');
    writeFileSync(big, Buffer.alloc(100 * 1024, 0x41));
    // the registry is never reached when the key fails: the key is read first
    const ref = '127.0.0.1:1/none:1';
    for (const [file, why] of [['/dev/zero', 'more than a key file holds (64 KiB at most)'], [big, '102400 bytes, more than a key file holds (64 KiB at most)']] as const) {
      const r = kiln(['sign', '--key', file, ref], withPassword);
      expect(r.signal).toBeNull();
      expect(r.code).not.toBe(0);
      expect(r.err).toBe(`kiln: cannot read key ${file}: ${why}`);
    }
    // a key through a pipe (what `--key <(pass show cosign.key)` gives): read, then the registry is asked
    const prefix = join(dir, 'piped');
    expect(kiln(['generate-key-pair', '--output-key-prefix', prefix], withPassword).code).toBe(0);
    const fifo = join(dir, 'key.fifo');
    spawnSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', `cat "${prefix}.key" > "${fifo}"`], { stdio: 'ignore' });
    try {
      const r = kiln(['sign', '--key', fifo, ref], withPassword);
      expect(r.signal).toBeNull();
      expect(r.err).not.toContain('cannot read key');
      expect(r.err).toMatch(/127\.0\.0\.1:1/);
    } finally {
      writer.kill('SIGKILL');
    }
  });

  it('generate-key-pair needs COSIGN_PASSWORD (empty on purpose is allowed) and never leaves half a pair', () => {
    const a = join(dir, 'a');
    const refused = kiln(['generate-key-pair', '--output-key-prefix', a], withoutPassword);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toBe('kiln: generate-key-pair: set COSIGN_PASSWORD to the password that encrypts the private key (COSIGN_PASSWORD= for none)');
    expect(existsSync(`${a}.key`)).toBe(false);

    const b = join(dir, 'b');
    expect(kiln(['generate-key-pair', '--output-key-prefix', b], { ...process.env, COSIGN_PASSWORD: '' }).code).toBe(0);
    expect(existsSync(`${b}.key`) && existsSync(`${b}.pub`)).toBe(true);

    // a .pub already there: the command fails and writes no .key either
    const c = join(dir, 'c');
    writeFileSync(`${c}.pub`, 'someone else\'s key');
    const clash = kiln(['generate-key-pair', '--output-key-prefix', c], withPassword);
    expect(clash.code).not.toBe(0);
    expect(clash.err).toMatch(/EEXIST/);
    expect(existsSync(`${c}.key`)).toBe(false);
  });
});
