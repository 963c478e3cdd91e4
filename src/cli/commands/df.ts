import type { Command } from 'commander';

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')).join('\n');
}

export function register(program: Command): void {
  program
    .command('df')
    .description('show how the store uses disk space: images, build cache, snapshots, cache mounts, logs, tmp')
    .option('-v, --verbose', 'also list every image, build-cache record and cache mount')
    .option('--json', 'print JSON: {root, totalBytes, images, buildCache, snapshots, cacheMounts, logs, tmp, unreferenced}')
    .action(async (flags: { verbose?: boolean; json?: boolean }, cmd: Command) => {
      const { withStore } = await import('../store-from-options.js');
      const { storeUsage } = await import('../../store/usage.js');
      const { humanSize } = await import('./images.js');
      const u = await withStore(cmd, (store) => storeUsage(store, { verbose: Boolean(flags.verbose) }));
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(u, null, 2)}\n`);
        return;
      }
      const h = humanSize;
      const out: string[] = [];
      out.push(
        table([
          ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
          ['Images', String(u.images.count), String(u.images.tagged), h(u.images.bytes), h(u.images.reclaimableBytes)],
          ['Build cache', String(u.buildCache.records), String(u.buildCache.records - u.buildCache.brokenRecords), h(u.buildCache.bytes), h(u.buildCache.reclaimableBytes)],
          ['Snapshots', String(u.snapshots.count), '-', h(u.snapshots.bytes), h(u.snapshots.reclaimableBytes)],
          ['Cache mounts', String(u.cacheMounts.count), '-', h(u.cacheMounts.bytes), h(u.cacheMounts.reclaimableBytes)],
          ['Unreferenced blobs', String(u.unreferenced.blobs), '0', h(u.unreferenced.bytes), h(u.unreferenced.reclaimableBytes)],
          ['Logs', String(u.logs.count), '-', h(u.logs.bytes), h(u.logs.reclaimableBytes)],
          ['Temporary', '-', '-', h(u.tmp.bytes), h(u.tmp.reclaimableBytes)],
        ]),
      );
      out.push('');
      out.push(`Images: ${u.images.tagged} named, ${u.images.untagged} unnamed; ${h(u.images.sharedBytes)} shared between images, ${h(u.images.uniqueBytes)} unique`);
      out.push(`Build cache: layers only the cache holds ${h(u.buildCache.bytes)}, layers shared with images ${h(u.buildCache.sharedBytes)}${u.buildCache.brokenRecords ? `, ${u.buildCache.brokenRecords} records whose layer is gone` : ''}`);
      out.push(`Store total (blobs + snapshots + cache mounts, what --keep-storage bounds): ${h(u.totalBytes)}`);
      out.push('RECLAIMABLE is what `kiln prune --all` frees; images are freed with `kiln rmi` then `kiln prune`.');
      if (flags.verbose) {
        out.push('', 'Images:');
        const imgs = u.images.list ?? [];
        out.push(imgs.length ? table([['NAME', 'DIGEST', 'SIZE', 'SHARED', 'UNIQUE'], ...imgs.map((i) => [i.ref ?? '<none>', i.digest.slice(7, 19), h(i.bytes), h(i.sharedBytes), h(i.uniqueBytes)])]) : '  (none)');
        out.push('', 'Build cache:');
        const recs = u.buildCache.list ?? [];
        out.push(
          recs.length
            ? table([
              ['KEY', 'LAST USED', 'LAYER', 'SIZE', 'SHARED', 'CREATED BY'],
              ...recs.map((r) => [r.key.slice(7, 19), r.lastUsed, r.layer ? r.layer.slice(7, 19) : '-', r.broken ? 'gone' : h(r.layerBytes), r.sharedWithImage ? 'yes' : 'no', (r.createdBy ?? '').replace(/\s+/g, ' ').slice(0, 60)]),
            ])
            : '  (none)',
        );
        out.push('', 'Cache mounts:');
        const ms = u.cacheMounts.list ?? [];
        out.push(ms.length ? table([['NAME', 'LAST USED', 'SIZE'], ...ms.map((m) => [m.name, m.lastUsed, h(m.bytes)])]) : '  (none)');
      }
      process.stdout.write(`${out.join('\n')}\n`);
    });
}
