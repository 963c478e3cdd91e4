import type { Command } from 'commander';

export interface TargetsFlags {
  file?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('targets')
    .description('list the stages a build can target, with the comment above each FROM as description')
    .argument('[context]', 'build context directory (the Dockerfile defaults to CONTEXT/Dockerfile)')
    .option('-f, --file <path>', 'Dockerfile')
    .option('--json', 'print JSON')
    .action(async (context: string | undefined, flags: TargetsFlags) => {
      process.stdout.write(await targetsCommand(context, flags));
    });
}

/** The command's work, returning what it prints. */
export async function targetsCommand(context: string | undefined, flags: TargetsFlags): Promise<string> {
  const { loadDockerfile } = await import('../../frontend/load.js');
  const { listTargets } = await import('../../plan/outline.js');
  const { table } = await import('./outline.js');
  const { parsed } = await loadDockerfile({ ...(flags.file ? { file: flags.file } : {}), ...(context ? { context } : {}) });
  const targets = listTargets(parsed);
  if (flags.json) return `${JSON.stringify({ targets }, null, 2)}\n`;
  const rows = targets.map((t) => [`${t.name ?? `stage ${t.index}`}${t.default ? ' (default)' : ''}`, t.description ?? '']);
  return `${table(['TARGET', 'DESCRIPTION'], rows).join('\n')}\n`;
}
