import type { Command } from 'commander';
import { KilnError } from '../../errors/index.js';
import { collect } from '../collect.js';
import { globalOptions } from '../global-options.js';

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
    .option('--chunk-size <size>', 'upload blobs larger than this in chunks of this size (e.g. 64M)', '64M')
    .option('--max-concurrent-uploads <n>', 'blobs uploaded at once', '3')
    .option('-q, --quiet', 'print only the digest')
    .action(async (ref: string, dest: string | undefined, flags: PushFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const [{ push }, { Store }, { defaultRoot }, { formatRegistryEvent, parseByteCount }] = await Promise.all([
        import('../../registry/push.js'),
        import('../../store/store.js'),
        import('../../store/layout.js'),
        import('../../registry/progress-text.js'),
      ]);
      const chunkSize = parseByteCount(flags.chunkSize ?? '64M');
      if (!chunkSize) throw new KilnError('USAGE', `invalid --chunk-size "${flags.chunkSize}" (e.g. 64M)`);
      const uploads = Number(flags.maxConcurrentUploads ?? '3');
      if (!Number.isInteger(uploads) || uploads < 1) throw new KilnError('USAGE', '--max-concurrent-uploads must be a positive integer');
      const store = await Store.open(g.root ?? defaultRoot());
      try {
        const r = await push(store, ref, dest, {
          tags: flags.tag,
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
        if (!flags.quiet) process.stderr.write(`pushed ${r.ref.name}${r.tags.length ? `:${r.tags.join(', :')}` : ''}\n`);
        process.stdout.write(`${r.digest}\n`);
      } finally {
        await store.close();
      }
    });
}
