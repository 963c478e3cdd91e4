import { createWriteStream } from 'node:fs';
import { chmod, lchown, lutimes, mkdir, rm, symlink, utimes } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FsView } from '../context/fs-view.js';
import { platformDirName } from '../image/platform.js';
import type { LayerEntry } from '../layer/types.js';
import { isHostRoot } from '../rootless/session.js';
import type { Exporter } from './exporter.js';
import { entriesOf } from './fs-entries.js';

/**
 * `-o type=local,dest=DIR`: the final file system as a plain directory. Several
 * platforms get one sub-directory each (linux_amd64/, linux_arm64/), as buildx
 * lays them out.
 */
export const localExporter: Exporter<{ dest: string }> = {
  resolve: ({ dest }) => ({
    name: 'local',
    async export(src) {
      const parts = await src.filesystems();
      if (parts.length === 1 && !parts[0]!.platform) await writeLocal(parts[0]!.fs, dest);
      else for (const p of parts) await writeLocal(p.fs, p.platform ? path.join(dest, platformDirName(p.platform)) : dest);
    },
  }),
};

/** The final file system as a plain directory (owners kept when running as root). */
async function writeLocal(fs: FsView, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  const dirs: Array<[string, LayerEntry]> = [];
  // in rootless mode ids are the namespace's: the files stay the user's own on the host
  const root = isHostRoot();
  for (const e of entriesOf(fs)) {
    const target = path.join(dest, e.path);
    if (e.type === 'directory') {
      await mkdir(target, { recursive: true });
      dirs.push([target, e]);
      continue;
    }
    await rm(target, { force: true, recursive: true });
    if (e.type === 'file') {
      await pipeline(e.open!(), createWriteStream(target, { mode: e.mode }));
      await chmod(target, e.mode);
      await utimes(target, e.mtime, e.mtime);
    } else if (e.type === 'symlink') {
      await symlink(e.linkname ?? '', target);
      await lutimes(target, e.mtime, e.mtime).catch(() => {});
    } else {
      continue; // devices and fifos are not exported to a plain directory
    }
    if (root) await lchown(target, e.uid, e.gid);
  }
  // directory metadata last, deepest first, so writing children does not disturb it
  for (const [target, e] of dirs.reverse()) {
    await chmod(target, e.mode);
    if (root) await lchown(target, e.uid, e.gid);
    await utimes(target, e.mtime, e.mtime);
  }
}
