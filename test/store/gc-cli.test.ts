import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Digest } from '../../src/image/digest.js';
import { Store } from '../../src/store/store.js';
import { makeBusyboxImage } from '../helpers/busybox.js';
import { rebuildIfStale, runKiln, type KilnRun } from '../helpers/kiln-cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import { DAY, makeCacheMount, putRecord, randomLayer } from './gc-fixture.js';

/** `kiln prune` and `kiln df` end to end through `node bin/kiln` on the compiled tree (rebuilt when stale). */
const SOURCES = ['cli/commands/prune', 'cli/commands/df', 'cli/commands/index', 'store/gc', 'store/usage', 'store/size'];

let dir: Awaited<ReturnType<typeof tempDir>>;
let root: string;
const keys: Digest[] = [];
const layers: Array<{ digest: Digest; size: number }> = [];

function kiln(args: string[]): Promise<KilnRun> {
  return runKiln(args, { env: { KILN_ROOT: root } });
}

beforeAll(async () => {
  await rebuildIfStale(SOURCES);
  dir = await tempDir('kiln-gc-cli-');
  root = join(dir.path, 'root');
  const store = await Store.open(root);
  await makeBusyboxImage(store, 'localhost/busybox:latest');
  const now = Date.now();
  // three cache-only layers, used 3, 2 and 1 days ago
  for (let i = 0; i < 3; i++) {
    const l = await randomLayer(store, `f${i}`, 200_000);
    layers.push(l);
    keys.push(await putRecord(store, `C${i}`, { mediaType: l.mediaType, digest: l.digest, size: l.size, diffID: l.diffID }, now - (3 - i) * DAY));
  }
  await makeCacheMount(root, 'pip-x', 10_000, now - 30 * DAY);
  await store.close();
});
afterAll(async () => dir.cleanup());

interface DfJson {
  totalBytes: number;
  images: { tagged: number };
  buildCache: { records: number; bytes: number; list?: Array<{ key: string }> };
  cacheMounts: { count: number };
}

describe('kiln df and kiln prune', () => {
  it('df prints a table, --json the numbers, -v the records', async () => {
    const table = await kiln(['df']);
    expect(table).toMatchObject({ code: 0, stderr: '' });
    expect(table.stdout).toMatch(/^TYPE\s+TOTAL\s+ACTIVE\s+SIZE\s+RECLAIMABLE\n/);
    expect(table.stdout).toMatch(/\nBuild cache\s+3\s+3\s+60\dkB\s+60\dkB\n/);
    expect(table.stdout).toMatch(/\nCache mounts\s+1\s/);
    const j = JSON.parse((await kiln(['df', '--json'])).stdout) as DfJson;
    expect(j.images.tagged).toBe(1);
    expect(j.buildCache).toMatchObject({ records: 3, bytes: layers.reduce((n, l) => n + l.size, 0) });
    expect(j.buildCache.list).toBeUndefined();
    const v = JSON.parse((await kiln(['df', '--json', '-v'])).stdout) as DfJson;
    expect(v.buildCache.list!.map((r) => r.key)).toEqual([...keys].reverse());
    const text = await kiln(['df', '-v']);
    expect(text.stdout).toContain('localhost/busybox:latest');
    expect(text.stdout).toContain(keys[0]!.slice(7, 19));
  });

  it('rejects bad sizes, durations and filters as usage errors', async () => {
    for (const args of [
      ['prune', '--keep-storage', '10XB'],
      ['prune', '--filter', 'until=soon'],
      ['prune', '--filter', 'label=x'],
    ]) {
      const r = await kiln(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^kiln: /);
    }
  });

  it('--all --dry-run lists, deletes nothing', async () => {
    const r = await kiln(['prune', '--all', '--dry-run']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    for (const k of keys) expect(r.stdout).toContain(`Would delete build-cache record ${k}`);
    expect(r.stdout).toContain('Would delete cache mount pip-x');
    for (const k of keys) expect(existsSync(join(root, 'cache', 'records', `${k.slice(7)}.json`))).toBe(true);
  });

  it('--keep-storage evicts the least recently used record; --filter until the idle cache mount', async () => {
    const before = (JSON.parse((await kiln(['df', '--json'])).stdout) as DfJson).totalBytes;
    const r = await kiln(['prune', '--keep-storage', String(before - 1), '--json']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const j = JSON.parse(r.stdout) as { removedRecords: string[]; removedBlobs: string[]; finalBytes: number; overLimit?: boolean };
    expect(j.removedRecords).toEqual([keys[0]]);
    expect(j.removedBlobs).toEqual([layers[0]!.digest]);
    expect(j.overLimit).toBeUndefined();
    expect((JSON.parse((await kiln(['df', '--json'])).stdout) as DfJson).totalBytes).toBe(j.finalBytes);

    const f = await kiln(['prune', '--filter', 'until=7d']);
    expect(f).toMatchObject({ code: 0, stderr: '' });
    expect(f.stdout).toContain('Deleted cache mount pip-x');
    expect(f.stdout).not.toContain('build-cache record');

    const low = await kiln(['prune', '--keep-storage', '1k']);
    expect(low.code).toBe(0);
    expect(low.stdout).toContain('Deleted 2 build-cache records, 2 blobs, 0 snapshots: ');
    expect(low.stdout).toContain('Store stays above --keep-storage');
    const after = JSON.parse((await kiln(['df', '--json'])).stdout) as DfJson;
    expect(after).toMatchObject({ images: { tagged: 1 }, buildCache: { records: 0 }, cacheMounts: { count: 0 } });
  });
});
