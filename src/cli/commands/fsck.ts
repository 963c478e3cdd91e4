import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('fsck')
    .description("verify every blob's digest and every image name's manifest, config and layers")
    .option('--json', 'print JSON: {blobsChecked, refsChecked, problems: [{kind, digest, ref, message}]}')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const { withStore } = await import('../store-from-options.js');
      const { fsck } = await import('../../store/fsck.js');
      const { liveLeftovers } = await import('../../sandbox/scratch.js');
      // no sweep: what killed builds left running is reported, not silently cleaned up
      const report = await withStore(cmd, (store) => fsck(store, { leftovers: liveLeftovers }), { sweep: false });
      if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      else {
        for (const p of report.problems) process.stdout.write(`${p.kind}: ${p.message}\n`);
        process.stdout.write(`checked ${report.blobsChecked} blobs and ${report.refsChecked} images: ${report.problems.length ? `${report.problems.length} problems` : 'ok'}\n`);
      }
      if (report.problems.length) process.exitCode = 1;
    });
}
