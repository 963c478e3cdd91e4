import type { Command } from 'commander';
import { collect } from '../collect.js';

export interface CheckFlags {
  file?: string;
  buildArg: string[];
  config?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('check')
    .description("run the Dockerfile build checks (BuildKit's rules and kiln's security rules) without building")
    .argument('[context]', 'build context directory (enables CopyIgnoredFile; the Dockerfile defaults to CONTEXT/Dockerfile)')
    .option('-f, --file <path>', 'Dockerfile')
    .option('--build-arg <k[=v]>', 'set a build arg (repeatable); BUILDKIT_DOCKERFILE_CHECK overrides the # check= directive', collect, [])
    .option('--config <skip=…;error=…>', 'override the # check= directive, e.g. "skip=JSONArgsRecommended;error=true"')
    .option('--json', 'print JSON')
    .action(async (context: string | undefined, flags: CheckFlags) => {
      const r = await checkCommand(context, flags);
      process.stdout.write(r.output);
      if (r.exitCode !== 0) process.exitCode = r.exitCode;
    });
}

/** The command's work: what it prints and its exit code (1 when a check is an error). */
export async function checkCommand(context: string | undefined, flags: CheckFlags): Promise<{ output: string; exitCode: number }> {
  const { loadDockerfile } = await import('../../frontend/load.js');
  const { runChecks, hasCheckErrors } = await import('../../frontend/check/index.js');
  const { parseBuildArgs } = await import('../../build/options.js');
  const loaded = await loadDockerfile({ ...(flags.file ? { file: flags.file } : {}), ...(context ? { context } : {}) });
  let isIgnored: ((p: string) => boolean) | undefined;
  if (context !== undefined) {
    const { findIgnoreFile, loadIgnoreFile } = await import('../../context/dockerignore.js');
    const matcher = loadIgnoreFile(findIgnoreFile(context, loaded.path));
    if (!matcher.empty) isIgnored = (p) => matcher.excludes(p);
  }
  const warnings = runChecks(loaded.parsed, {
    buildArgs: parseBuildArgs(flags.buildArg),
    ...(flags.config !== undefined ? { check: flags.config } : {}),
    ...(isIgnored ? { isIgnored } : {}),
  });
  const failed = hasCheckErrors(warnings);
  let output = '';
  if (flags.json) {
    output = `${JSON.stringify({ warnings, errors: warnings.filter((w) => w.error).length }, null, 2)}\n`;
  } else {
    for (const w of warnings) output += `${w.file}:${w.line}: ${w.error ? 'error' : 'warning'}: ${w.message} (${w.rule})\n`;
    const n = warnings.length;
    output += n === 0 ? 'Check complete, no warnings found.\n' : `Check complete, ${n} ${failed ? 'error' : 'warning'}${n === 1 ? '' : 's'} found.\n`;
  }
  return { output, exitCode: failed ? 1 : 0 };
}
