import type { Command } from 'commander';

export interface GlobalOptions {
  root?: string;
  debug?: boolean;
  insecureRegistry: string[];
  registryMirror: string[];
}

/** Options given before or after the subcommand name, merged. */
export function globalOptions(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Partial<GlobalOptions>;
  return {
    root: o.root,
    debug: o.debug,
    insecureRegistry: o.insecureRegistry ?? [],
    registryMirror: o.registryMirror ?? [],
  };
}
