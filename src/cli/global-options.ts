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
  const opts = [
    new Option('--root <dir>', 'store root (default: $KILN_ROOT, /var/lib/kiln as root, else $XDG_DATA_HOME/kiln)'),
    new Option('-D, --debug', 'print stack traces and debug traces (credentials are never printed)'),
    new Option('--insecure-registry <host[:port]>', 'allow plain HTTP or unverified TLS for this registry (repeatable)').argParser(collect),
    new Option('--registry-mirror <url>', 'mirror tried first for docker.io (repeatable)').argParser(collect),
  ];
  for (const o of opts) cmd.addOption(hidden ? o.hideHelp() : o);
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
