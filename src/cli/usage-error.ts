import type { Command } from 'commander';

/**
 * Commander's parse errors in one or two lines, as buildx users expect:
 *   kiln build: unknown option '--foo' (did you mean '--file'?)
 *   Run 'kiln build --help' for usage.
 * never the whole help after them.
 */
export function formatUsageError(commandPath: string, message: string): string {
  const lines = message.replace(/^error: /, '').trim().split('\n');
  let text = lines[0]!;
  const hint = /^\(Did you mean (.+)\?\)$/.exec(lines.slice(1).join(' ').trim());
  if (hint) {
    const names = hint[1]!.replace(/^one of /, '').split(/,\s*/).map((n) => `'${n}'`);
    text += ` (did you mean ${names.join(' or ')}?)`;
  }
  return `${commandPath}: ${text}\nRun '${commandPath} --help' for usage.\n`;
}

/** Applies the short error form to a command and every subcommand declared so far. */
export function shortUsageErrors(cmd: Command): void {
  const path: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) path.unshift(c.name());
  cmd.showHelpAfterError(false).showSuggestionAfterError(true);
  cmd.configureOutput({
    writeErr: (s) => process.stderr.write(s),
    outputError: (s, write) => write(formatUsageError(path.join(' '), s)),
  });
  for (const sub of cmd.commands) shortUsageErrors(sub);
}
