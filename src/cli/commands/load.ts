import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('load')
    .description('load images from an OCI archive or a docker save archive (gzip, zstd or plain)')
    .requiredOption('-i, --input <file>', 'archive to read')
    .action(async (flags: { input: string }, cmd: Command) => {
      const { withStore } = await import('../store-from-options.js');
      const { loadArchive } = await import('../../export/index.js');
      const { parseReference } = await import('../../registry/reference.js');
      const loaded = await withStore(cmd, (store) =>
        loadArchive(store, flags.input, { normaliseName: (n) => parseReference(n).toString(), onWarning: (m) => process.stderr.write(`warning: ${m}\n`) }),
      );
      for (const l of loaded) {
        if (l.refs.length) for (const r of l.refs) process.stdout.write(`Loaded image: ${r}\n`);
        else process.stdout.write(`Loaded image: ${l.descriptor.digest}\n`);
      }
    });
}
