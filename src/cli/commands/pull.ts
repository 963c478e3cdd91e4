import type { Command } from 'commander';
import { positiveInt, registryClientOptions } from '../registry-flags.js';
import { withStore } from '../store-from-options.js';

interface PullFlags {
  platform?: string;
  allPlatforms?: boolean;
  maxConcurrentDownloads?: string;
  quiet?: boolean;
  unpack: boolean;
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
    .option('--no-unpack', 'do not extract the layers into snapshots now (a build does it when it first needs them)')
    .action(async (ref: string, flags: PullFlags, cmd: Command) => {
      const concurrency = positiveInt('--max-concurrent-downloads', flags.maxConcurrentDownloads ?? '4');
      const { pull } = await import('../../registry/pull.js');
      const client = await registryClientOptions(cmd, flags.quiet);
      await withStore(cmd, async (store) => {
        const { parseReference } = await import('../../registry/reference.js');
        const name = parseReference(ref).toString();
        const before = await store.resolve(name);
        const r = await pull(store, ref, {
          ...(flags.platform ? { platform: flags.platform } : {}),
          allPlatforms: flags.allPlatforms ?? false,
          concurrency,
          ...client,
        });
        // unpacked now, like containerd and Buildah do at pull, so the first build does not pay for it
        if (flags.unpack && r.image) {
          try {
            await Promise.all(r.image.layers.map((l) => store.snapshotPath(l)));
          } catch (e) {
            // an image whose layers cannot be unpacked is not pulled: the name goes back to what it was
            // (its blobs stay until prune; an interrupted extraction leaves no snapshot marked complete)
            if (before) await store.setRef(name, before);
            else await store.removeRef(name);
            const { KilnError } = await import('../../errors/index.js');
            const why = e instanceof Error ? e.message : String(e);
            throw new KilnError(e instanceof KilnError ? e.code : 'STORE', `${r.ref.familiar()}: layers cannot be unpacked, image not kept: ${why}`, { cause: e });
          }
        }
        if (!flags.quiet) process.stderr.write(`pulled ${r.ref.toString()}\n`);
        process.stdout.write(`${r.indexDigest && !flags.allPlatforms ? r.manifestDigest : r.descriptor.digest}\n`);
      });
    });
}
