import type { Command } from 'commander';
import { collect } from '../collect.js';
import { registryClientOptions, uploadFlags } from '../registry-flags.js';
import { withStore } from '../store-from-options.js';

interface PushFlags {
  tag: string[];
  chunkSize?: string;
  maxConcurrentUploads?: string;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('push')
    .description('push an image from the store to a registry')
    .argument('<ref>', 'image in the store')
    .argument('[dest]', 'destination reference (default: REF)')
    .option('-t, --tag <tag>', 'also tag the pushed manifest with this tag (repeatable)', collect, [])
    .option('--chunk-size <size>', 'upload blobs larger than this in PATCH chunks of this size (e.g. 64M; default: one PUT up to 64 MiB, one PATCH beyond)')
    .option('--max-concurrent-uploads <n>', 'blobs uploaded at once', '3')
    .option('-q, --quiet', 'print only the digest')
    .action(async (ref: string, dest: string | undefined, flags: PushFlags, cmd: Command) => {
      const { push } = await import('../../registry/push.js');
      const upload = await uploadFlags(flags);
      const client = await registryClientOptions(cmd, flags.quiet);
      await withStore(cmd, async (store) => {
        const r = await push(store, ref, dest, {
          tags: flags.tag,
          ...upload,
          ...client,
        });
        if (!flags.quiet) process.stderr.write(`pushed ${r.ref.name}${r.tags.length ? `:${r.tags.join(', :')}` : ''}\n`);
        process.stdout.write(`${r.digest}\n`);
      });
    });
}
