import type { Command } from 'commander';
import { KilnError } from '../../errors/index.js';
import { globalOptions } from '../global-options.js';

interface PullFlags {
  platform?: string;
  allPlatforms?: boolean;
  maxConcurrentDownloads?: string;
  quiet?: boolean;
}

export function register(program: Command): void {
  program
    .command('pull')
    .description('pull an image from a registry into the store')
    .argument('<ref>', 'image reference, e.g. busybox, ghcr.io/o/r:tag, host:5000/x@sha256:…')
    .option('--platform <os/arch[/variant]>', 'platform to pick from a multi-platform image (default: this host)')
    .option('--all-platforms', 'pull every platform of a multi-platform image')
    .option('--max-concurrent-downloads <n>', 'blobs downloaded at once', '4')
    .option('-q, --quiet', 'print only the digest')
    .action(async (ref: string, flags: PullFlags, cmd: Command) => {
      const g = globalOptions(cmd);
      const concurrency = Number(flags.maxConcurrentDownloads ?? '4');
      if (!Number.isInteger(concurrency) || concurrency < 1) throw new KilnError('USAGE', '--max-concurrent-downloads must be a positive integer');
      const [{ pull }, { Store }, { defaultRoot }, { formatRegistryEvent }] = await Promise.all([
        import('../../registry/pull.js'),
        import('../../store/store.js'),
        import('../../store/layout.js'),
        import('../../registry/progress-text.js'),
      ]);
      const store = await Store.open(g.root ?? defaultRoot());
      try {
        const r = await pull(store, ref, {
          ...(flags.platform ? { platform: flags.platform } : {}),
          allPlatforms: flags.allPlatforms ?? false,
          concurrency,
          insecureRegistries: g.insecureRegistry,
          mirrors: g.registryMirror,
          ...(g.debug ? { debug: (l: string) => process.stderr.write(`debug: ${l}\n`) } : {}),
          onEvent: (e) => {
            if (flags.quiet) return;
            const line = formatRegistryEvent(e);
            if (line) process.stderr.write(`${line}\n`);
          },
        });
        if (!flags.quiet) process.stderr.write(`pulled ${r.ref.toString()}\n`);
        process.stdout.write(`${r.indexDigest && !flags.allPlatforms ? r.manifestDigest : r.descriptor.digest}\n`);
      } finally {
        await store.close();
      }
    });
}
