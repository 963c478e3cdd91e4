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
    .option('--json', 'print JSON (each located warning has `column` and `range`)')
    .action(async (context: string | undefined, flags: CheckFlags) => {
      const r = await checkCommand(context, flags);
      process.stdout.write(r.output);
      if (r.exitCode !== 0) process.exitCode = r.exitCode;
    });
}

/** The command's work: what it prints and its exit code (1 when a check is an error). */
export async function checkCommand(context: string | undefined, flags: CheckFlags): Promise<{ output: string; exitCode: number }> {
  const { readFile } = await import('node:fs/promises');
  const { join, resolve } = await import('node:path');
  const { loadDockerfile } = await import('../../frontend/load.js');
  const { runChecks, hasCheckErrors } = await import('../../frontend/check/index.js');
  const { parseBuildArgs } = await import('../../builder/options.js');
  // dockerfile-ast is only needed here (and it is slow to load): the locator puts
  // warnings and parse errors on their token, kiln's own parse decides everything else.
  const { createLocator, locateError } = await import('../../frontend/locate.js');
  let loaded: Awaited<ReturnType<typeof loadDockerfile>>;
  try {
    loaded = await loadDockerfile({ ...(flags.file ? { file: flags.file } : {}), ...(context ? { context } : {}) });
  } catch (e) {
    // Same path loadDockerfile read; the text is read again only to place the error.
    const path = flags.file ? resolve(flags.file) : resolve(join(context ?? '.', 'Dockerfile'));
    const text = await readFile(path, 'utf8').catch(() => undefined);
    if (text !== undefined) locateError(e, text);
    throw e;
  }
  let isIgnored: ((p: string) => boolean) | undefined;
  if (context !== undefined) {
    const { findIgnoreFile, loadIgnoreFile } = await import('../../context/dockerignore.js');
    const matcher = loadIgnoreFile(findIgnoreFile(context, loaded.path));
    if (!matcher.empty) isIgnored = (p) => matcher.excludes(p);
  }
  // Read a second time rather than changing loadDockerfile's result; should the file change
  // in between, the locator's keyword check leaves the warnings without a column.
  const text = await readFile(loaded.path, 'utf8');
  const warnings = runChecks(loaded.parsed, {
    buildArgs: parseBuildArgs(flags.buildArg),
    ...(flags.config !== undefined ? { check: flags.config } : {}),
    ...(isIgnored ? { isIgnored } : {}),
    locator: createLocator(text),
  });
  const failed = hasCheckErrors(warnings);
  let output = '';
  if (flags.json) {
    output = `${JSON.stringify({ warnings, errors: warnings.filter((w) => w.error).length }, null, 2)}\n`;
  } else {
    for (const w of warnings) {
      // The token's own line and column when located (it may sit on a continuation line), else the instruction's line.
      const where = w.range ? `${w.range.start.line}:${w.range.start.column}` : `${w.line}`;
      output += `${w.file}:${where}: ${w.error ? 'error' : 'warning'}: ${w.message} (${w.rule})\n`;
    }
    const n = warnings.length;
    output += n === 0 ? 'Check complete, no warnings found.\n' : `Check complete, ${n} ${failed ? 'error' : 'warning'}${n === 1 ? '' : 's'} found.\n`;
  }
  return { output, exitCode: failed ? 1 : 0 };
}
