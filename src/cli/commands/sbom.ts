import type { Command } from 'commander';

export function register(program: Command): void {
  program
    .command('sbom')
    .description('list the packages of a stored image as an SPDX 2.3 document (dpkg, apk, rpm, npm, Python, Go binaries)')
    .argument('<image>', 'image name, digest or digest prefix')
    .option('--platform <os/arch[/variant]>', 'which image of a multi-platform index (default: this host)')
    .option('--format <format>', 'spdx-json (the document) or table (name, version, purl)', 'spdx-json')
    .option('-o, --output <file>', 'write to a file instead of standard output')
    .action(async (input: string, flags: { platform?: string; format: string; output?: string }, cmd: Command) => {
      const { withStore, findImage } = await import('../store-from-options.js');
      const { parsePlatform } = await import('../../image/platform.js');
      const { imageSbom } = await import('../../attest/sbom-statement.js');
      const { KilnError, printable, printableJson } = await import('../../errors/index.js');
      const { replaceFile } = await import('../../fs/replace-file.js');
      if (flags.format !== 'spdx-json' && flags.format !== 'table') throw new KilnError('USAGE', `--format must be spdx-json or table, not "${flags.format}"`);
      await withStore(cmd, async (store) => {
        const found = await findImage(store, input);
        const img = await store.imageFromDescriptor(found.descriptor, flags.platform ? { platform: parsePlatform(flags.platform) } : {});
        const epoch = process.env.SOURCE_DATE_EPOCH;
        const created = epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date();
        const doc = await imageSbom(store, img, { name: found.ref ?? img.descriptor.digest, created });
        // names and versions come from the image: in the table each field is one escaped line (tabs too, which
        // would shift the columns); JSON escapes C0 controls itself, and to a terminal C1 and bidi controls as well,
        // while a file or pipe gets the document exactly
        const row = (fields: string[]) => fields.map((f) => printable(f)).join('\t');
        const text = flags.format === 'table'
          ? `${['NAME\tVERSION\tPURL', ...doc.packages.map((p) => row([p.name, p.versionInfo, p.externalRefs[0]?.referenceLocator ?? '']))].join('\n')}\n`
          : `${!flags.output && process.stdout.isTTY ? printableJson(doc) : JSON.stringify(doc, null, 2)}\n`;
        if (flags.output) await replaceFile(flags.output, text);
        else process.stdout.write(text);
      });
    });
}
