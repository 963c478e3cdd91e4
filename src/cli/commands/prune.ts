import type { Command } from 'commander';
import { collect } from '../collect.js';

interface PruneFlags {
  all?: boolean;
  keepStorage?: string;
  filter?: string[];
  dryRun?: boolean;
  wait: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('prune')
    .description('delete what no image name or kept image needs: unreferenced blobs and snapshots, stale build cache, old logs')
    .option('-a, --all', 'also every build-cache record and every RUN cache mount (images are never touched)')
    .option('--keep-storage <size>', 'evict build cache, least recently used first, until blobs + snapshots + cache mounts fit in SIZE (10GB, 10GiB, 512m, bytes)')
    .option('--filter <key=value>', 'only build cache unused for longer than DURATION: until=DURATION (24h, 30m, 7d); repeatable', collect)
    .option('--dry-run', 'only print what would be deleted')
    .option('--wait <seconds>', 'wait this long for other kiln processes using the store (default: fail at once)', '0')
    .option('--json', 'print JSON: {removedRecords, removedBlobs, removedSnapshots, removedCacheMounts, removedLogs, removedPartials, freedBytes, finalBytes, overLimit?}')
    .action(async (flags: PruneFlags, cmd: Command) => {
      const { KilnError } = await import('../../errors/index.js');
      const { parseDuration, parseSize } = await import('../../store/size.js');
      const wait = Number(flags.wait);
      if (!Number.isFinite(wait) || wait < 0) throw new KilnError('USAGE', `prune: --wait wants a number of seconds, got "${flags.wait}"`);
      let until: number | undefined;
      for (const f of flags.filter ?? []) {
        const eq = f.indexOf('=');
        const key = eq < 0 ? f : f.slice(0, eq);
        if (key !== 'until' || eq < 0) throw new KilnError('USAGE', `prune: unknown filter "${f}" (supported: until=DURATION)`);
        until = parseDuration(f.slice(eq + 1));
      }
      const keepStorage = flags.keepStorage === undefined ? undefined : parseSize(flags.keepStorage);
      const { withStore } = await import('../store-from-options.js');
      const { prune } = await import('../../store/gc.js');
      const { humanSize } = await import('./images.js');
      const r = await withStore(cmd, (store) =>
        prune(store, {
          dryRun: Boolean(flags.dryRun),
          lockTimeoutMs: wait * 1000,
          all: Boolean(flags.all),
          ...(until !== undefined ? { until } : {}),
          ...(keepStorage !== undefined ? { keepStorage } : {}),
        }),
      );
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      const verb = flags.dryRun ? 'Would delete' : 'Deleted';
      const out: string[] = [];
      for (const k of r.removedRecords) out.push(`${verb} build-cache record ${k}`);
      for (const m of r.removedCacheMounts) out.push(`${verb} cache mount ${m}`);
      for (const d of r.removedBlobs) out.push(`${verb} blob ${d}`);
      for (const s of r.removedSnapshots) out.push(`${verb} snapshot ${s}`);
      for (const l of r.removedLogs) out.push(`${verb} log ${l}`);
      for (const p of r.removedPartials) out.push(`${verb} partial download sha256:${p}`);
      const counts = [
        [r.removedRecords.length, 'build-cache records'],
        [r.removedBlobs.length, 'blobs'],
        [r.removedSnapshots.length, 'snapshots'],
        [r.removedCacheMounts.length, 'cache mounts'],
        [r.removedLogs.length, 'logs'],
        [r.removedPartials.length, 'partial downloads'],
      ] as const;
      const what = counts.filter(([n], i) => n > 0 || i === 1 || i === 2).map(([n, w]) => `${n} ${w}`);
      out.push(`${verb} ${what.join(', ')}: ${humanSize(r.freedBytes)} ${flags.dryRun ? 'to free' : 'freed'}; store ${flags.dryRun ? 'would be' : 'is'} ${humanSize(r.finalBytes)}`);
      if (r.overLimit && keepStorage !== undefined) {
        out.push(`Store stays above --keep-storage ${humanSize(keepStorage)}: the rest is held by images (kiln rmi, then prune again)${flags.all ? '' : ' or cache mounts (--all)'}`);
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
