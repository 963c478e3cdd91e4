import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ListedEntry {
  /** `ls -l` style mode string, e.g. -rw-r--r--. */
  mode: string;
  uid: number;
  gid: number;
  /** Index of the layer (0 = base). */
  layer: number;
}

/**
 * Every entry of every layer of the image in an OCI archive, listed by GNU
 * tar with numeric owners (the later layer wins for a path). Real tar, real
 * blobs: what a registry or `docker load` would get.
 */
export function listOciArchive(archive: string): Map<string, ListedEntry> {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-listing-'));
  try {
    execFileSync('tar', ['-xf', archive, '-C', dir]);
    const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const blob = (digest: string): string => join(dir, 'blobs', ...digest.split(':'));
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: Array<{ digest: string }> };
    const out = new Map<string, ListedEntry>();
    manifest.layers.forEach((l, i) => {
      const text = execFileSync('tar', ['--numeric-owner', '-tvf', blob(l.digest)], { encoding: 'utf8' });
      for (const line of text.split('\n')) {
        const m = /^(\S{10})\s+(\d+)\/(\d+)\s+\d+\s+\S+\s+\S+\s+(.*?)(?: -> .*)?$/.exec(line);
        if (!m) continue;
        const path = m[4]!.replace(/^\.\//, '').replace(/\/$/, '');
        out.set(path, { mode: m[1]!, uid: Number(m[2]), gid: Number(m[3]), layer: i });
      }
    });
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
