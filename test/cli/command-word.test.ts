import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commandWord } from '../../src/cli/global-options.js';
import { COMMANDS } from '../../src/cli/commands/index.js';
import { runKiln } from '../helpers/kiln-cli.js';

describe('the command an argument vector names (only that command is declared)', () => {
  it('skips the global options and their values, as commander does', () => {
    expect(commandWord(['build', '.'])).toBe('build');
    expect(commandWord(['--root', '/tmp/x', 'build', '.'])).toBe('build');
    expect(commandWord(['--root=/tmp/x', '-D', 'images'])).toBe('images');
    expect(commandWord(['--insecure-registry', 'build', 'pull', 'a'])).toBe('pull');
    expect(commandWord(['--registry-mirror', 'https://m', '--debug', 'push', 'x'])).toBe('push');
    // a word that is an option's value is not the command
    expect(commandWord(['--root', 'images'])).toBeUndefined();
  });

  it('names none for help, the version, an unknown option or no word at all', () => {
    for (const argv of [[], ['--help'], ['-h', 'build'], ['--version'], ['--bogus', 'build'], ['--', 'build'], ['-D']]) expect(commandWord(argv), argv.join(' ')).toBeUndefined();
  });

  it('every top-level command is listed under exactly the names its module declares', () => {
    const names = COMMANDS.flatMap((c) => c.names);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(['build', 'sign', 'verify', 'generate-key-pair', 'setup']));
    for (const c of COMMANDS) {
      const declared: string[] = [];
      // a stand-in program records the names register() declares at the top level (not a subcommand's own)
      const stub: object = new Proxy({}, { get: () => () => stub });
      c.register({ command: (name: string) => (declared.push(name.split(' ')[0]!), stub) } as never);
      expect(declared, c.names.join(',')).toEqual(c.names);
    }
  });

  it('the help still lists every command, and a command after global options runs', async () => {
    const help = await runKiln(['--help']);
    expect(help.code).toBe(0);
    for (const name of COMMANDS.flatMap((c) => c.names)) expect(help.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    const root = await mkdtemp(path.join(tmpdir(), 'kiln-command-word-'));
    try {
      const images = await runKiln(['--root', root, '-D', 'images', '--json']);
      expect(images.stderr).toBe('');
      expect(images.code).toBe(0);
      expect(JSON.parse(images.stdout)).toEqual([]);
      const typo = await runKiln(['--root', root, 'imgaes']);
      expect(typo.code).toBe(2);
      expect(typo.stderr).toContain("did you mean 'images'?");
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
