import type { Command } from 'commander';
import { KilnError } from '../../errors/index.js';
import { globalOptions } from '../global-options.js';

interface CopyFlags {
  platform?: string;
  allPlatforms?: boolean;
  chunkSize?: string;
  maxConcurrentUploads?: string;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('copy')
    .description('copy an image from one registry to another, streaming (nothing stored locally)')
    .argument('<src>', 'source reference')
    .argument('<dest>', 'destination reference')
    .option('--platform <os/arch[/variant]>', 'platform to copy out of a multi-platform image (default: this host)')
    .option('--all-platforms', 'copy the whole multi-platform index')
    .option('--chunk-size <size>', 'upload blobs larger than this in chunks of this size (e.g. 64M)', '64M')
    .option('--max-concurrent-uploads <n>', 'blobs copied at once', '3')
    .option('-q, --quiet', 'print only the digest')
    .action(async (src: string, dest: string, flags: CopyFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const [{ copy }, { formatRegistryEvent, parseByteCount }] = await Promise.all([
        import('../../registry/copy.js'),
        import('../../registry/progress-text.js'),
      ]);
      const chunkSize = parseByteCount(flags.chunkSize ?? '64M');
      if (!chunkSize) throw new KilnError('USAGE', `invalid --chunk-size "${flags.chunkSize}" (e.g. 64M)`);
      const uploads = Number(flags.maxConcurrentUploads ?? '3');
      if (!Number.isInteger(uploads) || uploads < 1) throw new KilnError('USAGE', '--max-concurrent-uploads must be a positive integer');
      const r = await copy(src, dest, {
        ...(flags.platform ? { platform: flags.platform } : {}),
        allPlatforms: flags.allPlatforms ?? false,
        chunkSize,
        uploadConcurrency: uploads,
        insecureRegistries: g.insecureRegistry,
        mirrors: g.registryMirror,
        ...(g.debug ? { debug: (l: string) => process.stderr.write(`debug: ${l}\n`) } : {}),
        onEvent: (e) => {
          if (flags.quiet) return;
          const line = formatRegistryEvent(e);
          if (line) process.stderr.write(`${line}\n`);
        },
      });
      if (!flags.quiet) process.stderr.write(`copied ${r.src.toString()} to ${r.dest.toString()}\n`);
      process.stdout.write(`${r.digest}\n`);
    });
}
