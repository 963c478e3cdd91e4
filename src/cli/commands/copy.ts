import type { Command } from 'commander';
import { registryClientOptions, uploadFlags } from '../registry-flags.js';

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
    .option('--chunk-size <size>', 'upload blobs larger than this in PATCH chunks of this size (e.g. 64M; default: one PUT up to 64 MiB, one PATCH beyond)')
    .option('--max-concurrent-uploads <n>', 'blobs copied at once', '3')
    .option('-q, --quiet', 'print only the digest')
    .action(async (src: string, dest: string, flags: CopyFlags, cmd: Command) => {
      const { copy } = await import('../../registry/copy.js');
      const client = await registryClientOptions(cmd, flags.quiet);
      const r = await copy(src, dest, {
        ...(flags.platform ? { platform: flags.platform } : {}),
        allPlatforms: flags.allPlatforms ?? false,
        ...(await uploadFlags(flags)),
        ...client,
      });
      if (!flags.quiet) process.stderr.write(`copied ${r.src.toString()} to ${r.dest.toString()}\n`);
      process.stdout.write(`${r.digest}\n`);
    });
}
