import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('rmi')
    .description('remove image names (blobs are freed by kiln prune)')
    .argument('<ref...>', 'image names, or digests to drop every name of (with --force)')
    .option('-f, --force', 'remove an image given by digest even if names point to it')
    .action(async (inputs: string[], flags: { force?: boolean }, cmd: Command) => {
      const { withStore, findImage } = await import('../store-from-options.js');
      const { KilnError, isKilnError } = await import('../../errors/index.js');
      const failures: string[] = [];
      await withStore(cmd, async (store) => {
        for (const input of inputs) {
          try {
            // a name is removed as it is spelled, whatever it points to (one recorded unchecked by an older kiln too)
            const found = await findImage(store, input, { anyName: true });
            if (found.ref !== undefined) {
              await store.removeRef(found.ref);
              process.stdout.write(`Untagged: ${found.ref}\n`);
              continue;
            }
            const names = (await store.listRefs()).filter((r) => r.descriptor.digest === found.descriptor.digest).map((r) => r.ref);
            if (names.length && !flags.force) {
              throw new KilnError('USAGE', `image ${input} is named ${names.join(', ')} (remove the names, or use --force)`);
            }
            for (const n of await store.removeDigest(found.descriptor.digest)) process.stdout.write(`Untagged: ${n}\n`);
            process.stdout.write(`Deleted: ${found.descriptor.digest}\n`);
          } catch (e) {
            if (!isKilnError(e)) throw e;
            failures.push(e.format());
            process.stderr.write(`kiln: ${e.format()}\n`);
          }
        }
      });
      if (failures.length) process.exitCode = 1;
    });
}
