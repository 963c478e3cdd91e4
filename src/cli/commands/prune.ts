import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('prune')
    .description('delete blobs and snapshots no image name, unnamed kept image or build-cache record needs')
    .option('--dry-run', 'only print what would be deleted')
    .option('--wait <seconds>', 'wait this long for other kiln processes using the store (default: fail at once)', '0')
    .option('--json', 'print JSON: {removedBlobs, removedSnapshots, freedBytes}')
    .action(async (flags: { dryRun?: boolean; wait: string; json?: boolean }, cmd: Command) => {
      const { KilnError } = await import('../../errors/index.js');
      const wait = Number(flags.wait);
      if (!Number.isFinite(wait) || wait < 0) throw new KilnError('USAGE', `prune: --wait wants a number of seconds, got "${flags.wait}"`);
      const { withStore } = await import('../store-from-options.js');
      const { prune } = await import('../../store/gc.js');
      const { humanSize } = await import('./images.js');
      const r = await withStore(cmd, (store) => prune(store, { dryRun: Boolean(flags.dryRun), lockTimeoutMs: wait * 1000 }));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      const verb = flags.dryRun ? 'Would delete' : 'Deleted';
      for (const d of r.removedBlobs) process.stdout.write(`${verb} blob ${d}\n`);
      for (const s of r.removedSnapshots) process.stdout.write(`${verb} snapshot ${s}\n`);
      process.stdout.write(`${verb} ${r.removedBlobs.length} blobs and ${r.removedSnapshots.length} snapshots, ${humanSize(r.freedBytes)} ${flags.dryRun ? 'to free' : 'freed'}\n`);
    });
}
