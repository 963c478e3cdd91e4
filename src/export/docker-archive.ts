import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rm, stat } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError } from '../errors/index.js';
import { openUncompressed, sniffCompression } from '../layer/decompress.js';
import { digestHex, digestOfHash, type Digest } from '../image/digest.js';
import { layerCompression } from '../image/media-types.js';
import type { Platform } from '../image/types.js';
import { tempName } from '../store/atomic-file.js';
import type { Store } from '../store/store.js';
import { ArchiveWriter } from './archive-writer.js';
import { familiarName, tagOf, type SaveItem } from './saved-image.js';
import type { Exporter } from './exporter.js';

/** One entry of a docker-archive's manifest.json. */
export interface DockerArchiveManifestEntry {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
}

/**
 * Writes the `docker save` format: manifest.json + repositories, the config as
 * `<hex>.json` and each layer uncompressed as `<diffID hex>/layer.tar` (the
 * format docker load and skopeo's docker-archive transport read). Compressed
 * layers are decompressed into the store's tmp/ first (tar needs the size up
 * front) and checked against their diffID on the way.
 */
export async function saveDockerArchive(store: Store, items: SaveItem[], dest: string, opts: { platform?: Platform } = {}): Promise<void> {
  const w = new ArchiveWriter(dest);
  try {
    const manifest: DockerArchiveManifestEntry[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    const written = new Set<string>();
    for (const item of items) {
      // an index is saved as the manifest for the platform: docker-archive holds single-platform images
      const image = await store.imageFromDescriptor(item.descriptor, opts.platform ? { platform: opts.platform } : {});
      const configName = `${digestHex(image.configDescriptor.digest)}.json`;
      if (!written.has(configName)) {
        written.add(configName);
        await w.addBytes(configName, await store.readBlob(image.configDescriptor.digest));
      }
      const layerNames: string[] = [];
      for (const layer of image.layers) {
        const name = `${digestHex(layer.diffID)}/layer.tar`;
        layerNames.push(name);
        if (written.has(name)) continue;
        written.add(name);
        // the decompressor's rule: the bytes decide, the media type only when they cannot
        if ((sniffCompression(await blobHead(store, layer.digest)) ?? layerCompression(layer.mediaType)) === 'none') {
          await w.addStream(name, layer.size, store.openBlob(layer.digest, { verify: 'once' }));
        } else {
          await addDecompressed(store, w, name, layer.digest, layer.mediaType, layer.diffID);
        }
      }
      const repoTags = item.ref ? [familiarName(item.ref)] : [];
      manifest.push({ Config: configName, RepoTags: repoTags.length ? repoTags : null, Layers: layerNames });
      if (item.ref && layerNames.length) {
        const tag = tagOf(item.ref);
        const fam = familiarName(item.ref);
        const repo = tag ? fam.slice(0, fam.length - tag.length - 1) : fam.split('@')[0]!;
        (repositories[repo] ??= {})[tag ?? 'latest'] = layerNames[layerNames.length - 1]!.split('/')[0]!;
      }
    }
    await w.addBytes('manifest.json', Buffer.from(JSON.stringify(manifest)));
    await w.addBytes('repositories', Buffer.from(JSON.stringify(repositories)));
    await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

async function addDecompressed(store: Store, w: ArchiveWriter, name: string, digest: Digest, mediaType: string, diffID: Digest): Promise<void> {
  const tmp = tempName(store.layout.tmp, 'export');
  try {
    const hash = createHash('sha256');
    const hasher = new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        cb(null, chunk);
      },
    });
    await pipeline(openUncompressed(store.openBlob(digest, { verify: 'once' }), mediaType), hasher, createWriteStream(tmp));
    const got = digestOfHash(hash);
    if (got !== diffID) throw new KilnError('DIGEST_MISMATCH', `layer ${digest} decompresses to ${got}, config says ${diffID}`);
    const { size } = await stat(tmp);
    await w.addStream(name, size, createReadStream(tmp));
  } finally {
    await rm(tmp, { force: true });
  }
}

/** `-o type=docker,dest=FILE`: a `docker load` archive of the stored image, one entry per `-t` name. */
export const dockerExporter: Exporter<{ dest: string }> = {
  resolve: ({ dest }) => ({
    name: 'docker',
    async export(src) {
      await saveDockerArchive(src.store, src.tags.length ? src.tags.map((ref) => ({ ref, descriptor: src.descriptor })) : [{ descriptor: src.descriptor }], dest);
    },
  }),
};

/** The first bytes of a stored blob (fewer when it is shorter): enough to tell its compression. */
export async function blobHead(store: Store, digest: Digest, n = 6): Promise<Buffer> {
  const fh = await open(store.blobPath(digest), 'r');
  try {
    const b = Buffer.alloc(n);
    const { bytesRead } = await fh.read(b, 0, n, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}
