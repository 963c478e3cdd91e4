import type { Command } from 'commander';

/** Longest line `inspect` prints (a long RUN line in the history is cut, with "…"). */
const INSPECT_LINE_MAX = 65536;

export function register(program: Command): void {
  program
    .command('inspect')
    .description('show an image: manifest digest, config, layers and history')
    .argument('<ref>', 'image name, digest or digest prefix')
    .option('--platform <os/arch[/variant]>', 'which image of a multi-platform index (default: this host)')
    .option('--json', 'print JSON: {ref, descriptor, manifest, config, layers}')
    .option('--attestations', 'list the SBOM and provenance attestations of each image in the index instead (with --json: the statements themselves)')
    .action(async (input: string, flags: { json?: boolean; platform?: string; attestations?: boolean }, cmd: Command) => {
      const { withStore, findImage } = await import('../store-from-options.js');
      const { formatPlatform, parsePlatform } = await import('../../image/platform.js');
      const { humanSize, indexPlatforms } = await import('./images.js');
      const { printable, printableJson } = await import('../../errors/index.js');
      const platform = flags.platform ? parsePlatform(flags.platform) : undefined;
      await withStore(cmd, async (store) => {
        const found = await findImage(store, input);
        if (flags.attestations) {
          const { readAttestations } = await import('../../attest/read.js');
          const all = (await readAttestations(store, found.descriptor)).filter((a) => !platform || a.platform === formatPlatform(platform));
          if (flags.json) {
            process.stdout.write(`${printableJson(all)}\n`);
            return;
          }
          const out: string[] = [];
          for (const a of all) {
            out.push(`${a.platform}  ${a.digest}  (attestation manifest ${a.manifest})`);
            for (const s of a.statements) out.push(`  ${s.predicateType}  ${s.digest}  ${humanSize(s.size)}`);
          }
          if (!all.length) out.push(`${found.ref ?? found.descriptor.digest}: no attestations`);
          process.stdout.write(`${out.map((l) => printable(l, INSPECT_LINE_MAX)).join('\n')}\n`);
          return;
        }
        const img = await store.imageFromDescriptor(found.descriptor, platform ? { platform } : {});
        const platforms = await indexPlatforms(store, found.descriptor);
        const layers = img.layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size, diffID: l.diffID }));
        if (flags.json) {
          const index = found.descriptor.digest !== img.descriptor.digest ? { index: found.descriptor } : {};
          const out = { ref: found.ref ?? null, descriptor: img.descriptor, ...index, ...(platforms ? { platforms } : {}), manifest: img.manifest, config: img.config, layers };
          process.stdout.write(`${printableJson(out)}\n`);
          return;
        }
        const c = img.config;
        const cc = c.config ?? {};
        const lines: string[] = [];
        const kv = (k: string, v: string | undefined) => v !== undefined && v !== '' && lines.push(`${`${k}:`.padEnd(14)}${v}`);
        kv('Name', found.ref ?? '<none>');
        kv('Digest', img.descriptor.digest);
        if (found.descriptor.digest !== img.descriptor.digest) kv('Index', found.descriptor.digest);
        if (platforms) kv('Platforms', platforms.join(', '));
        kv('MediaType', img.descriptor.mediaType);
        kv('Platform', formatPlatform({ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }));
        kv('Created', c.created);
        kv('Config', img.configDescriptor.digest);
        kv('User', cc.User);
        kv('WorkingDir', cc.WorkingDir);
        kv('Entrypoint', cc.Entrypoint ? JSON.stringify(cc.Entrypoint) : undefined);
        kv('Cmd', cc.Cmd ? JSON.stringify(cc.Cmd) : undefined);
        kv('Shell', cc.Shell ? JSON.stringify(cc.Shell) : undefined);
        kv('StopSignal', cc.StopSignal);
        if (cc.ExposedPorts) kv('ExposedPorts', Object.keys(cc.ExposedPorts).join(' '));
        if (cc.Volumes) kv('Volumes', Object.keys(cc.Volumes).join(' '));
        if (cc.Env?.length) {
          lines.push('Env:');
          for (const e of cc.Env) lines.push(`  ${e}`);
        }
        if (cc.Labels && Object.keys(cc.Labels).length) {
          lines.push('Labels:');
          for (const [k, v] of Object.entries(cc.Labels)) lines.push(`  ${k}=${v}`);
        }
        lines.push(`Layers (${layers.length}, ${humanSize(layers.reduce((s, l) => s + l.size, 0))}):`);
        for (const l of layers) lines.push(`  ${l.digest}  ${humanSize(l.size).padStart(7)}  diffID ${l.diffID}  ${l.mediaType}`);
        if (c.history?.length) {
          lines.push('History:');
          for (const h of c.history) lines.push(`  ${h.created ?? '-'}  ${h.empty_layer ? '(no layer) ' : ''}${h.created_by ?? ''}${h.comment ? `  # ${h.comment}` : ''}`);
        }
        // every value above comes from the image's author: one escaped line each
        process.stdout.write(`${lines.map((l) => printable(l, INSPECT_LINE_MAX)).join('\n')}\n`);
      });
    });
}
