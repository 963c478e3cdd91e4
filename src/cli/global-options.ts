import { Option, type Command } from 'commander';
import { collect } from './collect.js';

export interface GlobalOptions {
  root?: string;
  debug?: boolean;
  insecureRegistry: string[];
  registryMirror: string[];
}

/**
 * The options every command accepts. They are declared on the program and,
 * hidden, on every subcommand, so `kiln --root X images` and
 * `kiln images --root X` both work (commands like `run` pass the options after
 * their image through, so the program alone cannot parse everything).
 */
export function addGlobalOptions(cmd: Command, hidden: boolean): void {
  for (const o of globalOptionList()) cmd.addOption(hidden ? o.hideHelp() : o);
}

/** New option objects each time: commander keeps (and hideHelp changes) the ones a command adds. */
function globalOptionList(): Option[] {
  return [
    new Option('--root <dir>', 'store root (default: $KILN_ROOT, /var/lib/kiln as root, else $XDG_DATA_HOME/kiln)'),
    new Option('-D, --debug', 'print stack traces and debug traces (credentials are never printed)'),
    new Option('--insecure-registry <host[:port]>', 'allow plain HTTP or unverified TLS for this registry (repeatable)').argParser(collect),
    new Option('--registry-mirror <url>', 'mirror tried first for docker.io (repeatable)').argParser(collect),
  ];
}

/**
 * The command an argument vector names: its first word after the global options (and their
 * values), as commander would find it. Undefined when there is no such word, or when an option
 * before it is not a global one (`--help`, `--version`, a mistake): the program itself decides then.
 */
export function commandWord(argv: readonly string[]): string | undefined {
  const options = globalOptionList();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return undefined;
    if (!arg.startsWith('-') || arg === '-') return arg;
    const flag = arg.split('=', 1)[0];
    const option = options.find((o) => o.long === flag || o.short === flag);
    if (!option) return undefined;
    // `--root DIR`: the next word is the value (`--root=DIR` holds it)
    if ((option.required || option.optional) && !arg.includes('=')) i++;
  }
  return undefined;
}

/** Options given before or after the subcommand name, merged (after wins for single values, lists add up). */
export function globalOptions(cmd: Command): GlobalOptions {
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) chain.unshift(c);
  const out: GlobalOptions = { insecureRegistry: [], registryMirror: [] };
  for (const c of chain) {
    const o = c.opts<Partial<GlobalOptions>>();
    if (o.root !== undefined) out.root = o.root;
    if (o.debug) out.debug = true;
    if (o.insecureRegistry) out.insecureRegistry.push(...o.insecureRegistry);
    if (o.registryMirror) out.registryMirror.push(...o.registryMirror);
  }
  return out;
}
