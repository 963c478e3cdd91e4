import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { replaceFile } from '../fs/replace-file.js';
import { platformDirName } from '../image/platform.js';
import { tarStream } from '../layer/tar-writer.js';
import type { LayerEntry } from '../layer/types.js';
import type { Exporter, PlatformFs } from './exporter.js';
import { entriesOf } from './fs-entries.js';

/**
 * `-o type=tar,dest=FILE`: the final file system as one tar (`-` for stdout),
 * written by the layer tar writer, beside FILE and renamed over it. Several platforms: each tree under its own
 * top-level directory (linux_amd64/, …).
 */
export const tarExporter: Exporter<{ dest: string }> = {
  resolve: ({ dest }) => ({
    name: 'tar',
    async export(src) {
      const parts = await src.filesystems();
      const entries = parts.length === 1 && !parts[0]!.platform ? entriesOf(parts[0]!.fs) : prefixed(parts);
      const tar = Readable.from(tarStream(entries));
      if (dest === '-') await pipeline(tar, process.stdout);
      else await replaceFile(dest, tar);
    },
  }),
};

/** Each platform's tree under its own top-level directory, in one tar. */
function* prefixed(parts: PlatformFs[]): Generator<LayerEntry> {
  for (const { platform, fs } of parts) {
    const dir = platformDirName(platform!);
    yield { path: dir, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: 0 };
    for (const e of entriesOf(fs)) yield { ...e, path: `${dir}/${e.path}` };
  }
}
