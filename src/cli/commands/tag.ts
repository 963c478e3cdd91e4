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
      let ref: string;
      try {
        ref = await normaliseRef(dst);
      } catch (e) {
        throw new KilnError('USAGE', `tag ${dst}: ${(e as Error).message}`);
      }
      if (ref.includes('@')) throw new KilnError('USAGE', `tag ${dst}: a tag cannot contain a digest`);
      await withStore(cmd, async (store) => {
        const found = await findImage(store, src);
        await store.setRef(ref, found.descriptor);
      });
    });
}
