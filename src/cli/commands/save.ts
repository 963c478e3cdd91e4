import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('save')
    .description('write images to a tar archive (OCI image layout, or docker save format)')
    .argument('<ref...>', 'image names, digests or digest prefixes')
    .requiredOption('-o, --output <file>', 'archive to write (replaced atomically)')
    .option('--format <oci|docker>', 'oci: OCI image layout tar (skopeo oci-archive:, umoci); docker: docker load format', 'oci')
    .option('--platform <os/arch[/variant]>', 'for multi-platform images: the platform to save when not all are stored (default: this host)')
    .action(async (inputs: string[], flags: { output: string; format: string; platform?: string }, cmd: Command) => {
      const { KilnError } = await import('../../errors/index.js');
      if (flags.format !== 'oci' && flags.format !== 'docker') throw new KilnError('USAGE', `save: unknown --format "${flags.format}" (want oci or docker)`);
      const { withStore, findImage } = await import('../store-from-options.js');
      const { parsePlatform } = await import('../../image/platform.js');
      const { saveOciArchive, saveDockerArchive } = await import('../../export/index.js');
      const { discardPendingFiles } = await import('../../fs/replace-file.js');
      const platform = flags.platform ? parsePlatform(flags.platform) : undefined;
      // the archive is written beside -o under a temp name: an interrupt removes it, then ends kiln as the signal would have
      const onSignal = (sig: NodeJS.Signals): void => {
        discardPendingFiles();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        process.kill(process.pid, sig);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        await withStore(cmd, async (store) => {
          const items = [];
          for (const input of inputs) items.push(await findImage(store, input));
          const save = flags.format === 'docker' ? saveDockerArchive : saveOciArchive;
          await save(store, items, flags.output, platform ? { platform } : {});
        });
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
