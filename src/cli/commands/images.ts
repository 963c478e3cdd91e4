import type { Store } from '../../store/store.js';
import type { Descriptor } from '../../image/types.js';
import type { Command } from 'commander';

/** Sizes as `kiln images`, `df`, `inspect` and `prune` print them (decimal, like Docker). */
import { formatSize } from '../../spec/size.js';
export const humanSize = formatSize;

/** `registry/repo:tag` → [`registry/repo`, `tag`]. */
export function splitRef(ref: string): [string, string] {
  const at = ref.indexOf('@');
  const name = at >= 0 ? ref.slice(0, at) : ref;
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  return colon > slash ? [name.slice(0, colon), name.slice(colon + 1)] : [name, '<none>'];
}

export interface ImageListing {
  ref: string | null;
  repository: string;
  tag: string;
  digest: string;
  mediaType: string;
  /** One platform; for an index, its platforms joined with commas (attestation entries left out). */
  platform: string | null;
  /** An index's platforms, in its order. */
  platforms?: string[];
  created: string | null;
  /** Config plus layers as stored (compressed); null when the image cannot be read. */
  size: number | null;
  error?: string;
}

/** The platforms of an index (BuildKit's `unknown/unknown` attestation entries left out); undefined for a single manifest. */
export async function indexPlatforms(store: Store, desc: Descriptor): Promise<string[] | undefined> {
  const { isIndexMediaType } = await import('../../image/media-types.js');
  const { formatPlatform } = await import('../../image/platform.js');
  if (!isIndexMediaType(desc.mediaType)) return undefined;
  const { indexShape } = await import('../../image/document-shapes.js');
  const index = await store.readJSON(desc.digest, indexShape);
  return index.manifests.flatMap((m) => (m.platform && m.platform.os !== 'unknown' ? [formatPlatform(m.platform)] : []));
}

export function register(program: Command): void {
  program
    .command('images')
    .description('list the images in the store')
    .option('--json', 'print a JSON array')
    .action(async (flags: { json?: boolean }, cmd: Command) => {
      const { withStore } = await import('../store-from-options.js');
      const { formatPlatform } = await import('../../image/platform.js');
      const { printable, printableJson } = await import('../../errors/index.js');
      const list = await withStore(cmd, async (store) => {
        const out: ImageListing[] = [];
        for (const e of await store.listEntries()) {
          const [repository, tag] = e.ref ? splitRef(e.ref) : ['<none>', '<none>'];
          const row: ImageListing = { ref: e.ref ?? null, repository, tag, digest: e.descriptor.digest, mediaType: e.descriptor.mediaType, platform: null, created: null, size: null };
          try {
            const platforms = await indexPlatforms(store, e.descriptor);
            if (platforms) {
              row.platforms = platforms;
              row.platform = platforms.join(',');
            }
            const img = await store.imageFromDescriptor(e.descriptor);
            row.platform ??= formatPlatform({ os: img.config.os, architecture: img.config.architecture, ...(img.config.variant ? { variant: img.config.variant } : {}) });
            row.created = img.config.created ?? null;
            row.size = img.configDescriptor.size + img.layers.reduce((s, l) => s + l.size, 0);
          } catch (err) {
            row.error = (err as Error).message;
          }
          out.push(row);
        }
        return out;
      });
      if (flags.json) {
        process.stdout.write(`${printableJson(list)}\n`);
        return;
      }
      const rows = [['REPOSITORY', 'TAG', 'DIGEST', 'PLATFORM', 'CREATED', 'SIZE']];
      for (const r of list) {
        // platform and created come from the image's config: escaped, bounded
        rows.push([r.repository, r.tag, r.digest.slice(7, 19), printable(r.platform ?? '?', 200), printable(r.created ?? '-', 200), r.size === null ? '?' : humanSize(r.size)]);
      }
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
      for (const row of rows) process.stdout.write(`${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i]!))).join('   ')}\n`);
    });
}
