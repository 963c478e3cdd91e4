import type { Command } from 'commander';
import { collect } from '../collect.js';

export interface OutlineFlags {
  file?: string;
  target?: string;
  buildArg: string[];
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('outline')
    .description('show what a target needs: build args (with defaults and descriptions), secrets and ssh ids')
    .argument('[context]', 'build context directory (the Dockerfile defaults to CONTEXT/Dockerfile)')
    .option('-f, --file <path>', 'Dockerfile')
    .option('--target <stage>', 'stage to outline (default: the last one)')
    .option('--build-arg <k[=v]>', 'set a build arg; a bare K takes its value from the environment (repeatable)', collect, [])
    .option('--json', 'print JSON')
    .action(async (context: string | undefined, flags: OutlineFlags) => {
      process.stdout.write(await outlineCommand(context, flags));
    });
}

/** The command's work, returning what it prints (tests call this directly). */
export async function outlineCommand(context: string | undefined, flags: OutlineFlags): Promise<string> {
  const { loadDockerfile } = await import('../../frontend/load.js');
  const { outline } = await import('../../plan/outline.js');
  const { parseBuildArgs } = await import('../../builder/options.js');
  const { parsed } = await loadDockerfile({ ...(flags.file ? { file: flags.file } : {}), ...(context ? { context } : {}) });
  const o = outline(parsed, { ...(flags.target ? { target: flags.target } : {}), buildArgs: parseBuildArgs(flags.buildArg) });
  if (flags.json) return `${JSON.stringify(o, null, 2)}\n`;
  const lines: string[] = [];
  lines.push(`TARGET:      ${o.name ?? `stage ${o.index} (unnamed)`}`);
  if (o.description) lines.push(`DESCRIPTION: ${o.description}`);
  if (o.args.length > 0) {
    lines.push('');
    lines.push(...table(['BUILD ARG', 'VALUE', 'DESCRIPTION'], o.args.map((a) => [a.name, a.value ?? '<unset>', a.description ?? ''])));
  }
  if (o.secrets.length > 0) {
    lines.push('');
    lines.push(...table(['SECRET', 'REQUIRED'], o.secrets.map((s) => [s.id, String(s.required)])));
  }
  if (o.ssh.length > 0) {
    lines.push('');
    lines.push(...table(['SSH', 'REQUIRED'], o.ssh.map((s) => [s.id, String(s.required)])));
  }
  return `${lines.join('\n')}\n`;
}

/** Left-aligned columns separated by at least three spaces. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join('').trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}
