import { Command, CommanderError } from 'commander';
import { isKilnError, needsRootError } from '../errors/index.js';
import { COMMANDS } from './commands/index.js';
import { VERSION } from '../version.js';
import { rootlessFailure, runInUserNamespace, wantsUserNamespace } from '../rootless/index.js';
import { addGlobalOptions, commandWord } from './global-options.js';
import { shortUsageErrors } from './usage-error.js';

/**
 * Entry of the `kiln` binary. Each command module only declares its options and
 * imports the heavy code it needs inside its action, so `kiln --help` or a
 * cached rebuild does not pay for modules it never uses.
 */
export async function main(argv: string[]): Promise<number> {
  // as an ordinary user, every command runs again inside kiln's user namespace (rootless mode)
  if (wantsUserNamespace(argv)) {
    try {
      return await runInUserNamespace(argv);
    } catch (e) {
      return reportError(e, argv.includes('--debug'));
    }
  }
  const program = new Command();
  program
    .name('kiln')
    .description('Daemonless container image builder: Dockerfile in, OCI image out')
    .version(VERSION, '--version', 'print the version')
    .enablePositionalOptions()
    .exitOverride();

  addGlobalOptions(program, false);
  // Only the command named is declared: a cached `kiln build` then skips declaring some twenty other
  // commands and their options. Without one (help, --version, a misspelt command) all are, so
  // `kiln --help` lists them and commander suggests the nearest name.
  const word = commandWord(argv);
  const named = COMMANDS.filter((c) => word !== undefined && c.names.includes(word));
  for (const command of named.length === 1 ? named : COMMANDS) command.register(program);
  for (const sub of program.commands) addGlobalOptions(sub, true);
  shortUsageErrors(program);

  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    return reportError(e, Boolean(program.opts().debug) || argv.includes('--debug'));
  }
}

function reportError(e: unknown, debug: boolean): number {
  if (e instanceof CommanderError) {
    // help and --version exit through here with code 0
    if (e.exitCode === 0) return 0;
    return 2;
  }
  // a raw EPERM/EINVAL from a chown or a mount, as a user or in rootless mode, says what is missing instead
  e = rootlessFailure(e) ?? needsRootError(e) ?? e;
  if (isKilnError(e)) {
    process.stderr.write(`kiln: ${e.format()}\n`);
    if (debug) {
      // the stack of the innermost cause is where the failure happened
      let cur: unknown = e;
      while (cur instanceof Error) {
        if (cur.stack) process.stderr.write(`${cur.stack}\n`);
        cur = cur.cause;
      }
    }
    // an interrupted build exits as a shell reports a SIGINT (128 + 2), whichever signal stopped it
    return e.code === 'USAGE' ? 2 : e.code === 'CANCELLED' ? 130 : 1;
  }
  const msg = e instanceof Error ? e.message : String(e);
  process.stderr.write(`kiln: ${msg}\n`);
  if (debug && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
  return 1;
}
