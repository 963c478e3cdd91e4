// Leaves the disk as quiet before a builder's run as it was before the first one.
//
// Why: on an ext4 mounted without a journal (the machines this project is measured on), the
// inode allocator skips every free inode that was deleted within the last 60 s (300 s more while
// its inode-table block is still dirty) and is still cached: `find_inode_bit` calls
// `recently_deleted` for each such slot, for every file it creates. After the bench removes one
// builder's root (20,000 files for copy-many) or prunes BuildKit's cache, the next 20,000 creates
// in those block groups cost about ten times the kernel CPU: `cp -a` of copy-many's files took
// 0.45 s on a quiet disk and 4.4–5.3 s after such a removal, 0.80 s when the freed inodes' blocks
// were evicted first (perf: 37% find_get_block_common + 15% recently_deleted + 13% __brelse, all
// under __ext4_new_inode). Which builder pays depended on where its new directories landed, not
// on the builder. `sync` writes the deletions out; dropping the clean page cache then evicts the
// inode-table blocks, and the check passes an uncached block at once ("must have been written
// out"). The files every builder reads (the programs, the context) are read back in afterwards,
// so no builder starts its run on a cold page cache.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { open, opendir } from 'node:fs/promises';
import { join } from 'node:path';

const DROP_CACHES = '/proc/sys/vm/drop_caches';

/**
 * `sync`, then drop the clean page cache (root only; elsewhere it says why not), then read every
 * regular file under `warm` back in. Returns { dropped, reason?, warmedBytes, ms }.
 */
export async function settleDisk(warm) {
  const t = Date.now();
  execFileSync('sync');
  let dropped = false;
  let reason;
  try {
    // 1: page cache only (the buffer heads of the freed inodes' table blocks live there); dentries and inodes stay
    writeFileSync(DROP_CACHES, '1');
    dropped = true;
  } catch (e) {
    reason = `cannot write ${DROP_CACHES}: ${e.code ?? e.message}`;
  }
  let warmedBytes = 0;
  if (dropped) for (const p of warm) warmedBytes += await readBack(p);
  return { dropped, ...(reason ? { reason } : {}), warmedBytes, ms: Date.now() - t };
}

/** The files kiln runs from: node itself, bin/, dist/ and its runtime dependencies (not the dev ones). */
export function kilnProgramFiles(repoRoot) {
  const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  const deps = Object.keys(pkg.dependencies ?? {}).map((d) => join(repoRoot, 'node_modules', d));
  return [process.execPath, join(repoRoot, 'bin'), join(repoRoot, 'dist'), ...deps];
}

/** The other builders' client programs and the runtime they share; the ones not installed are skipped. */
export const PEER_PROGRAM_FILES = ['/usr/bin/docker', '/usr/bin/buildah', '/usr/sbin/runc', '/usr/bin/runc'];

/** Reads every regular file under `path` (or the file itself) once, and returns the bytes read; symlinks are not followed. */
export async function readBack(path) {
  if (!existsSync(path)) return 0;
  let total = 0;
  const buf = Buffer.allocUnsafe(1 << 20);
  const readFile = async (file) => {
    const fh = await open(file, 'r').catch(() => undefined);
    if (!fh) return;
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, null);
        if (bytesRead === 0) break;
        total += bytesRead;
      }
    } catch {
      // a file that went away or cannot be read: nothing to warm
    } finally {
      await fh.close();
    }
  };
  const walk = async (dir) => {
    let d;
    try {
      d = await opendir(dir);
    } catch (e) {
      if (e.code === 'ENOTDIR') await readFile(dir);
      return;
    }
    for await (const ent of d) {
      const p = join(dir, ent.name);
      if (ent.isDirectory()) await walk(p);
      else if (ent.isFile()) await readFile(p);
    }
  };
  await walk(path);
  return total;
}
