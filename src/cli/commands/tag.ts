import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('tag')
    .description('give a stored image another name')
    .argument('<src>', 'image name, digest or digest prefix')
    .argument('<dst>', 'new name (normalised: busybox → docker.io/library/busybox:latest)')
    .action(async (src: string, dst: string, _flags: unknown, cmd: Command) => {
      const { withStore, findImage, normaliseRef } = await import('../store-from-options.js');
      const { KilnError } = await import('../../errors/index.js');
      const { tagRefusal } = await import('../../store/ref-names.js');
      let ref: string;
      try {
        ref = await normaliseRef(dst);
      } catch (e) {
        throw new KilnError('USAGE', `tag ${dst}: ${(e as Error).message}`);
      }
      const refused = tagRefusal(ref);
      if (refused) throw new KilnError('USAGE', `tag ${dst}: ${refused}`);
      await withStore(cmd, async (store) => {
        const found = await findImage(store, src);
        await store.setRef(ref, found.descriptor);
      });
    });
}
